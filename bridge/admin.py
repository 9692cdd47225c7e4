"""The operator's CLI verbs: check, threads, history, dead-letters, rebuild-map."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TextIO, TypeVar

from bridge.config import Settings
from bridge.credentials import secret_problems
from bridge.embedded import EmbeddedRedis
from bridge.engage.client import EngageClient
from bridge.errors import BridgeError
from bridge.http import HttpServer, create_app
from bridge.metrics import Metrics
from bridge.models import ThreadKey
from bridge.runstate import running_emulator
from bridge.runtime import (
    BridgeRuntime,
    connect_redis,
    enabled_adapter_names,
    load_adapter,
    ping,
    redacted_url,
    redis_limits,
)
from bridge.threadmap import RedisClient

T = TypeVar("T")


def emulator_client(settings: Settings, url: str) -> EngageClient:
    from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID

    return EngageClient.from_settings(
        settings, base_url=url, api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID
    )


@contextlib.asynccontextmanager
async def maintenance(settings: Settings) -> AsyncIterator[BridgeRuntime]:
    """A runtime with no roles and no adapters: Redis, Engage Smarter and the core's stores.

    Without an API key it talks to the emulator of a `run` that is up in the same data dir
    (that emulator holds the conversations), else to a fresh one of its own.
    """
    settings = settings.model_copy(update={"http_port": 0, "http_host": "127.0.0.1"})
    engage = None
    if settings.uses_emulator and (url := await running_emulator(settings.data_dir)):
        engage = emulator_client(settings, url)
    try:
        async with BridgeRuntime(settings, adapters=[], roles=frozenset(), engage=engage) as rt:
            yield rt
    finally:
        if engage is not None:
            await engage.aclose()


def parse_key(text: str) -> ThreadKey:
    try:
        return ThreadKey.parse(text)
    except ValueError as exc:
        raise BridgeError(f"{exc} (expected platform:workspace:channel:thread)") from exc


async def cmd_threads(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    async with maintenance(settings) as rt:
        threads = rt.bridge.threads
        if args.action == "list":
            records = await threads.list()
            for r in records:
                print(
                    f"{r.thread_key}\t{r.conversation_id}\t{r.agent}\t{r.status}\t{r.updated}",
                    file=out,
                )
            print(f"{len(records)} thread(s)", file=out)
            return 0
        key = parse_key(args.key)
        if args.action == "show":
            record = await threads.get(key)
            if record is None:
                raise BridgeError(f"no conversation is mapped to thread {key}")
            for name, value in record.to_hash().items():
                print(f"{name}: {value}", file=out)
            return 0
        if not await threads.forget(key):
            raise BridgeError(f"no conversation is mapped to thread {key}")
        print(f"forgot thread {key} (its next message starts a new conversation)", file=out)
        return 0


async def cmd_history(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key)
    async with maintenance(settings) as rt:
        record = await rt.bridge.threads.get(key)
        if record is None:
            raise BridgeError(f"no conversation is mapped to thread {key}")
        messages = await rt.engage.get_messages(record.conversation_id)
        print(f"conversation {record.conversation_id} ({len(messages)} messages)", file=out)
        for message in messages:
            print(f"{message.role}: {message.content}", file=out)
    return 0


async def cmd_dead_letters(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    async with maintenance(settings) as rt:
        letters = rt.bridge.dead_letters
        if args.action == "list":
            found = await letters.list()
            for d in found:
                print(
                    f"{d.turn_id}\t{d.thread_key}\t{d.failed_at}\t"
                    f"{len(d.messages)} message(s)\t{d.error}",
                    file=out,
                )
            print(f"{len(found)} dead letter(s)", file=out)
            return 0
        replayed = await letters.replay(args.id)
        if replayed is None:
            raise BridgeError(f"no dead letter {args.id}")
        print(
            f"replayed {args.id}: {len(replayed.messages)} message(s) queued again for "
            f"{replayed.thread_key} (a running bridge's workers answer them)",
            file=out,
        )
        return 0


async def cmd_rebuild_map(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    async with maintenance(settings) as rt:
        count = await rt.bridge.rebuild_map()
    print(f"rebuilt {count} thread record(s) from Engage Smarter conversations", file=out)
    return 0


class Report:
    """Prints one OK/FAIL line per check and remembers whether anything failed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = 0

    def line(self, ok: bool, what: str, detail: str) -> None:
        self.failed += not ok
        print(f"{'OK  ' if ok else 'FAIL'} {what}: {detail}", file=self.out, flush=True)

    async def attempt(self, what: str, step: Awaitable[T], detail: str) -> T | None:
        try:
            result = await step
        except Exception as exc:
            self.line(False, what, f"{type(exc).__name__}: {exc}")
            return None
        self.line(True, what, detail)
        return result


async def _open_redis(settings: Settings, stack: contextlib.AsyncExitStack) -> RedisClient:
    if settings.redis_url:
        url = settings.redis_url
    else:
        embedded = EmbeddedRedis(settings.data_dir)
        await embedded.start()
        stack.push_async_callback(embedded.stop)
        url = embedded.url
    redis = connect_redis(url, cluster=settings.redis_cluster, limits=redis_limits(settings))
    stack.push_async_callback(redis.aclose)
    await ping(redis)
    return redis


async def _open_engage(settings: Settings, stack: contextlib.AsyncExitStack) -> EngageClient:
    if not settings.uses_emulator:
        client = EngageClient.from_settings(settings)
    elif url := await running_emulator(settings.data_dir):
        client = emulator_client(settings, url)
    else:
        from bridge import emulator

        async def ready() -> dict[str, str]:
            return {}

        server = HttpServer("127.0.0.1", 0)
        app = create_app(
            metrics=Metrics(), readiness=ready, mounts={"/emulator": emulator.create_app()}
        )
        await server.start(app)
        stack.push_async_callback(server.stop)
        client = emulator_client(settings, f"{server.url}/emulator")
    stack.push_async_callback(client.aclose)
    if not await client.validate_me():
        raise BridgeError("the API key or org id was not accepted (validate-me said no)")
    return client


async def _validate_agent(engage: EngageClient, agent: str) -> None:
    if not await engage.validate_agent(agent):
        raise BridgeError("unknown or inactive")


async def _start_adapter(settings: Settings, name: str, redis: RedisClient) -> None:
    adapter = load_adapter(name, settings, redis)  # the same factory `run` uses
    try:
        await adapter.start()
    finally:
        await adapter.aclose()


async def cmd_check(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    report = Report(out)
    problems = secret_problems(settings)
    report.line(not problems, "configuration", "; ".join(problems) or "loaded")
    async with contextlib.AsyncExitStack() as stack:
        where = redacted_url(settings.redis_url) if settings.redis_url else "embedded"
        redis = await report.attempt("redis", _open_redis(settings, stack), f"{where} answers")
        api = "built-in emulator" if settings.uses_emulator else settings.engage_api_url
        engage = await report.attempt(
            "engage smarter", _open_engage(settings, stack), f"{api} accepts the credentials"
        )
        for agent in sorted(settings.file.routing.all_agents()):
            if engage is None:
                report.line(False, f"agent {agent}", "not checked (no Engage Smarter)")
            else:
                await report.attempt(f"agent {agent}", _validate_agent(engage, agent), "active")
        for name in enabled_adapter_names(settings):
            if redis is None:
                report.line(False, f"platform {name}", "not checked (no Redis)")
                continue
            await report.attempt(
                f"platform {name}", _start_adapter(settings, name, redis), "credentials accepted"
            )
    print(
        "all checks passed" if not report.failed else f"{report.failed} check(s) failed", file=out
    )
    return 1 if report.failed else 0
