"""`engage-bridge check`: one OK/FAIL line per check, each FAIL naming what to set or fix.

Every check has its own time limit (a platform that does not answer is a FAIL after seconds,
not a silent wait on the SDK's retries); a check that depends on a failed one is skipped with
a SKIP line instead of repeating that failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Awaitable, Iterator
from typing import TextIO, TypeVar

from bridge import envnames
from bridge.config import Settings
from bridge.credentials import secret_problems
from bridge.engage.client import EngageClient
from bridge.engage.errors import Forbidden, Unauthorized
from bridge.errors import BridgeError
from bridge.loader import enabled_adapter_names, load_adapter
from bridge.maintenance import ORG_ID_MISSING, open_engage, open_redis
from bridge.output import is_tty
from bridge.redisconn import redacted_url
from bridge.store import RedisClient

T = TypeVar("T")

REDIS_SECONDS = 5.0
ENGAGE_SECONDS = 10.0
PLATFORM_SECONDS = 10.0
# What an operator sets to fix each platform's credentials.
PLATFORM_SETTINGS = {
    "slack": "SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN)",
    "discord": "DISCORD_BOT_TOKEN",
    "desk": "ENGAGE_BRIDGE_DESK_SIGNING_SECRET and ENGAGE_BRIDGE_DESK_CALLBACK_URL",
}
# Start-up notes libraries log as warnings that say nothing about the credentials checked here
# (Bolt: "`token` will be unused" beside an authorize function; discord.py: no PyNaCl for voice).
# Filters, not levels: Bolt copies the root logger's level onto its loggers when it builds them.
_NAMES_A_VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]{2,}\b")
_NOISY_LOGGERS = ("slack_bolt.AsyncApp", "discord.client")


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(_errors_only)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(_errors_only)


class Report:
    """Prints one line per check; on a terminal, says on stderr which check is running."""

    def __init__(self, out: TextIO, progress: TextIO | None = None) -> None:
        self.out = out
        self.failed = 0
        self._progress = progress if progress is not None and is_tty(progress) else None

    def line(self, status: str, what: str, detail: str) -> None:
        self.failed += status == "FAIL"
        print(f"{status:<4} {what}: {detail}", file=self.out, flush=True)

    async def attempt(self, what: str, step: Awaitable[T], ok: str, seconds: float) -> T | None:
        if self._progress is not None:
            self._progress.write(f"\r\x1b[2Kchecking {what}…")
            self._progress.flush()
        try:
            async with asyncio.timeout(seconds):
                result = await step
        except TimeoutError:
            self._clear()
            self.line("FAIL", what, explain(what, TimeoutError(f"no answer within {seconds:g} s")))
            return None
        except Exception as exc:
            self._clear()
            self.line("FAIL", what, explain(what, exc))
            return None
        self._clear()
        self.line("OK", what, ok)
        return result

    def _clear(self) -> None:
        if self._progress is not None:
            self._progress.write("\r\x1b[2K")
            self._progress.flush()


def explain(what: str, exc: Exception) -> str:
    """The failure in one line, with the setting to look at."""
    detail = str(exc) or type(exc).__name__
    if what == "redis":
        return f"{detail} (check ENGAGE_BRIDGE_REDIS_URL, or unset it for the embedded server)"
    if what == "engage smarter":
        if isinstance(exc, Unauthorized | Forbidden | NotAccepted):
            return (
                "the API key or org id was not accepted "
                "(check ENGAGE_SMARTER_API_KEY and ENGAGE_SMARTER_ORG_ID)"
            )
        return f"{detail} (check ENGAGE_SMARTER_API_URL)"
    platform = what.removeprefix("platform ")
    if _NAMES_A_VARIABLE.search(detail):
        return detail  # the adapter said what to set
    if platform in PLATFORM_SETTINGS:
        return f"{detail} (check {PLATFORM_SETTINGS[platform]})"
    return detail


class NotAccepted(BridgeError):
    """validate-me answered false."""


async def _validate_me(engage: EngageClient) -> EngageClient:
    if not await engage.validate_me():
        raise NotAccepted("validate-me said no")
    return engage


async def _validate_agent(engage: EngageClient, agent: str) -> None:
    if not await engage.validate_agent(agent):
        raise BridgeError("unknown or inactive (fix [routing] in ENGAGE_BRIDGE_CONFIG_FILE)")


async def _start_adapter(settings: Settings, name: str, redis: RedisClient) -> None:
    adapter = load_adapter(name, settings, redis)  # the same factory `run` uses
    try:
        await adapter.start()
    finally:
        await adapter.aclose()


def configuration_problems(settings: Settings) -> list[str]:
    problems = secret_problems(settings, *settings.platforms())
    problems += [envnames.describe(*unknown) for unknown in settings.unknown_variables()]
    if not settings.uses_emulator and not settings.engage_org_id:
        problems.append(ORG_ID_MISSING)
    return problems


async def cmd_check(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    report = Report(out, progress=sys.stderr)
    problems = configuration_problems(settings)
    for problem in problems:
        report.line("FAIL", "configuration", problem)
    if not problems:
        report.line("OK", "configuration", "loaded")
    with quiet_libraries():
        async with contextlib.AsyncExitStack() as stack:
            await _check_services(settings, report, stack)
    print(
        "all checks passed" if not report.failed else f"{report.failed} check(s) failed", file=out
    )
    return 1 if report.failed else 0


async def _check_services(
    settings: Settings, report: Report, stack: contextlib.AsyncExitStack
) -> None:
    where = redacted_url(settings.redis_url) if settings.redis_url else "embedded"
    redis = await report.attempt(
        "redis", open_redis(settings, stack), f"{where} answers", REDIS_SECONDS
    )
    engage: EngageClient | None = None
    if settings.uses_emulator or settings.engage_org_id:
        api = "built-in emulator" if settings.uses_emulator else settings.engage_api_url
        client = open_engage(settings, stack, persisted=False)
        engage = await report.attempt(
            "engage smarter", _validate_me(client), f"{api} accepts the credentials", ENGAGE_SECONDS
        )
    for agent in sorted(settings.file.routing.all_agents()):
        if engage is None:
            report.line("SKIP", f"agent {agent}", "needs Engage Smarter (see above)")
        else:
            step = _validate_agent(engage, agent)
            await report.attempt(f"agent {agent}", step, "active", ENGAGE_SECONDS)
    for name in enabled_adapter_names(settings):
        if redis is None:
            report.line("SKIP", f"platform {name}", "needs Redis (see above)")
            continue
        step = _start_adapter(settings, name, redis)
        await report.attempt(f"platform {name}", step, "credentials accepted", PLATFORM_SECONDS)
