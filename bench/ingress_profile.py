"""Where one Slack event's ack time goes: the real ingress app called in-process, per stage.

Run: flock /tmp/engage-cpu.lock timeout 300 .venv/bin/python -m bench.ingress_profile
  [--events 2000] [--concurrency 1] [--cprofile FILE]

Builds what `engage-bridge run --roles http` serves (BridgeRuntime with the Slack adapter, real
redis-server with AOF fsync always, lean fake Slack for auth.test) and calls the Starlette app
as ASGI directly (no sockets, no uvicorn), with signed first posts, so the figures are the
bridge's own per-event CPU: signature check, Bolt, our handler, Redis. Prints ms per event for
the whole request and for the stages timed by wrapping them (nested: Bolt includes our
handler, our handler includes submit).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapters.slack.settings import SlackSettings
from adapters.web.settings import WebSettings
from bench import lean_slack
from bench.bench_throughput import signed_post
from bridge.config import Settings
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID
from bridge.runtime import BridgeRuntime
from tests.redis_server import RedisServer

SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - started

    return wrapper


async def call_asgi(app: Any, raw: bytes, headers: dict[str, str]) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/slack/events", "raw_path": b"/slack/events",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(raw)).encode())],
    }  # fmt: skip
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def main(args: argparse.Namespace) -> None:
    server = RedisServer()
    server.start()
    slack = lean_slack.LeanSlack(lambda ts, at: None)
    await slack.start()
    workdir = Path(tempfile.mkdtemp(prefix="engage-ingress-"))
    (workdir / "bridge.toml").write_text('[routing]\ndefault_agent = "parrot"\n')
    platforms = [
        SlackSettings(
            bot_token=lean_slack.BOT_TOKEN,
            signing_secret=lean_slack.SIGNING_SECRET,
            api_url=slack.api_url,
            _env_file=None,
        ),
        WebSettings(enabled=False, _env_file=None),
    ]
    settings = Settings(
        platforms, redis_url=server.url, http_port=0, config_file=workdir / "bridge.toml",
        engage_api_key=DEFAULT_API_KEY, engage_org_id=DEFAULT_ORG_ID,
        engage_api_url="http://127.0.0.1:9", roles={"http"}, _env_file=None,
    )  # fmt: skip
    try:
        async with BridgeRuntime(settings) as runtime:
            adapter: Any = runtime.adapters[0]
            inbox = runtime.bridge.inbox
            inbox.submit = timed("inbox.submit", inbox.submit)  # type: ignore[method-assign]
            inbox.enqueue = timed("inbox.enqueue", inbox.enqueue)  # type: ignore[method-assign]
            adapter._app.async_dispatch = timed("bolt dispatch", adapter._app.async_dispatch)
            adapter._submit = timed("adapter._submit (slot + submit)", adapter._submit)
            app = runtime._http._server.config.loaded_app  # type: ignore[union-attr]
            posts = [signed_post(n, 900) for n in range(args.events + 200)]
            for n in range(200):  # warm-up
                await call_asgi(app, posts[n][1], posts[n][2])
            SPENT.clear()
            profiler = cProfile.Profile() if args.cprofile else None
            queue = iter(posts[200:])
            statuses: list[int] = []

            async def client() -> None:
                for _, raw, headers in queue:
                    statuses.append(await call_asgi(app, raw, headers))

            if profiler:
                profiler.enable()
            started, cpu_started = time.perf_counter(), time.process_time()
            await asyncio.gather(*(client() for _ in range(args.concurrency)))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.cprofile)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            assert statuses.count(200) == args.events, set(statuses)
            n = args.events
            per_event = f"wall {wall / n * 1e3:.3f} ms/event, CPU {cpu / n * 1e3:.3f} ms/event"
            print(f"{n} events, concurrency {args.concurrency}: {per_event} ({n / wall:.0f}/s)")
            for name, spent in SPENT.items():
                print(f"  {name}: {spent / n * 1e3:.3f} ms/event (wall, nested)")
    finally:
        await slack.aclose()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--cprofile", default="")
    asyncio.run(main(parser.parse_args()))
