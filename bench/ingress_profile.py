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

from bench import lean_slack
from bench.bench_throughput import signed_post
from bench.harness import call_asgi, in_process_settings
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


async def main(args: argparse.Namespace) -> None:
    server = RedisServer()
    server.start()
    slack = lean_slack.LeanSlack(lambda ts, at: None)
    await slack.start()
    workdir = Path(tempfile.mkdtemp(prefix="engage-ingress-"))
    _, settings = in_process_settings(
        workdir, slack.api_url, server.url, http_port=0, roles={"http"}
    )
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
                await call_asgi(app, posts[n][1], posts[n][2], hold_open=True)
            SPENT.clear()
            profiler = cProfile.Profile() if args.cprofile else None
            queue = iter(posts[200:])
            statuses: list[int] = []

            async def client() -> None:
                for _, raw, headers in queue:
                    statuses.append(await call_asgi(app, raw, headers, hold_open=True))

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
