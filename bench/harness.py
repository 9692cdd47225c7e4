"""What the Slack benches set up and tear down alike: the fakes a bridge talks to, its settings.

A bench run has a work dir, the emulator in its own process, the lean fake Slack in the
driver and (for a bridge) a real redis-server; `slack_bench` starts them and stops them, in
that order's reverse, however the run ends. Every child process is also noted in CHILDREN,
which `run` kills if the bench itself is stopped before its own teardown ran.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from adapters.slack.settings import SlackSettings
from adapters.web.settings import WebSettings
from bench import lean_slack
from bench.chaos_fleet import Emulator
from bridge.config import Settings
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID
from bridge.http import KEEP_ALIVE_SECONDS
from tests.redis_server import RedisServer

CHILDREN: list[subprocess.Popen[bytes]] = []
_BRIDGE_TOML = '[routing]\ndefault_agent = "parrot"\n'


@dataclass
class SlackBench:
    workdir: Path
    emulator: Emulator
    slack: lean_slack.LeanSlack
    redis: RedisServer | None

    async def ready(self, agent_delay: float | None = None) -> None:
        """Once the emulator answers; its agent then takes `agent_delay` seconds a turn."""
        await self.emulator.ready()
        if agent_delay is not None:
            async with httpx.AsyncClient() as admin:
                faults = f"{self.emulator.url}/_emulator/faults"
                await admin.put(faults, json={"agent_delay": agent_delay})

    def bridge_env(self, log_level: str) -> dict[str, str]:
        """A bridge process's environment: Slack over HTTP (Events API) against these fakes."""
        assert self.redis is not None, "slack_bench(with_redis=True) for a bridge"
        return {
            "ENGAGE_SMARTER_API_URL": self.emulator.url, "ENGAGE_SMARTER_API_KEY": DEFAULT_API_KEY,
            "ENGAGE_SMARTER_ORG_ID": DEFAULT_ORG_ID, "ENGAGE_BRIDGE_REDIS_URL": self.redis.url,
            "ENGAGE_BRIDGE_WEB_ENABLED": "false", "ENGAGE_BRIDGE_LOG_LEVEL": log_level,
            "ENGAGE_BRIDGE_CONFIG_FILE": str(config_file(self.workdir)),
            "SLACK_BOT_TOKEN": lean_slack.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": lean_slack.SIGNING_SECRET,
            "ENGAGE_BRIDGE_SLACK_API_URL": self.slack.api_url,
        }  # fmt: skip


@asynccontextmanager
async def slack_bench(
    prefix: str, slack: lean_slack.LeanSlack, *, with_redis: bool = True
) -> AsyncIterator[SlackBench]:
    """The fakes of one run (the emulator not yet ready: `await bench.ready()`)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    redis = RedisServer() if with_redis else None
    try:
        if redis is not None:
            redis.start()
            CHILDREN.extend([redis.process] if redis.process else [])
        await slack.start()
        try:
            emulator = Emulator(workdir)
            CHILDREN.append(emulator.process)
            try:
                yield SlackBench(workdir, emulator, slack, redis)
            finally:
                emulator.stop()
        finally:
            await slack.aclose()
    finally:
        if redis is not None:
            redis.close()
        shutil.rmtree(workdir, ignore_errors=True)


def config_file(workdir: Path) -> Path:
    """The bridge's config file in `workdir`: every thread routed to the emulator's parrot."""
    path = workdir / "bridge.toml"
    if not path.exists():
        path.write_text(_BRIDGE_TOML)
    return path


def in_process_settings(
    workdir: Path, slack_api_url: str, redis_url: str, **more: Any
) -> tuple[SlackSettings, Settings]:
    """Settings for a bridge built in the bench's own process (Slack over HTTP, no web UI)."""
    options = SlackSettings(
        bot_token=lean_slack.BOT_TOKEN,
        signing_secret=lean_slack.SIGNING_SECRET,
        api_url=slack_api_url,
        _env_file=None,
    )
    settings = Settings(
        [options, WebSettings(enabled=False, _env_file=None)],
        redis_url=redis_url, config_file=config_file(workdir),
        engage_api_key=DEFAULT_API_KEY, engage_org_id=DEFAULT_ORG_ID,
        engage_api_url="http://127.0.0.1:9", _env_file=None, **more,
    )  # fmt: skip
    return options, settings


def driver_session() -> aiohttp.ClientSession:
    """The driver's HTTP client: no connection limit, and idle connections dropped before the
    bridge's keep-alive ends them (as Slack's and a proxy's should): a POST on a connection the
    server closes at that moment is reset, and on a loaded machine that ended whole runs."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEP_ALIVE_SECONDS - 1)
    )


def asgi_scope(raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The ASGI scope of a signed Events API POST of `raw`."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/slack/events", "raw_path": b"/slack/events",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(raw)).encode())],
    }  # fmt: skip


async def call_asgi(
    app: Any, raw: bytes, headers: dict[str, str], *, hold_open: bool = False
) -> int:
    """POST `raw` to the ASGI `app`: the response's status. After the body the client is gone,
    or (`hold_open`) stays connected as a real one waiting for the answer does."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            if not hold_open:
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(asgi_scope(raw, headers), receive, send)
    return status


def py_spy(pid: int, out: str, *form: str) -> subprocess.Popen[bytes]:
    """py-spy recording process `pid` to `out` (default: raw stacks at 200 samples a second);
    `stop_spy` ends it and has the file written."""
    form = form or ("raw", "--rate", "200")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
         "--format", *form, "-o", out, "--pid", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)


def run(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run(main), then no child process of the bench outlives it."""
    try:
        asyncio.run(main)
    finally:
        kill_children()


def kill_children() -> None:
    for child in CHILDREN:
        if child.poll() is None:
            child.kill()
            child.wait()
