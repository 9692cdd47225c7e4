"""CPU of one Slack event's ack path, layer by layer, in-process on uvloop (no sockets, no Redis).

Run: flock /tmp/engage-bench.lock .venv/bin/python -m bench.ack_path [--events 20000] [--rounds 5]

The Slack adapter (bot token, the lean fake Slack for its start-up `auth.test`) with an inbox
that stores nothing, so what is timed is the bridge's own ack path: the ASGI app the HTTP
server runs (middleware, guard: media type, cap, signature on the raw bytes; Bolt's dispatch or
the adapter's own path; our listener and its `InboundMessage`), then the layers under it
alone. The sockets and uvicorn's parser are apart (bench/bench_http_parser.py); the ACCEPT
script's round trip too (bench/core_cpu.py). Figures: µs of process CPU per event, min of
`--rounds` rounds (each `--events` signed first posts, one at a time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from starlette.requests import Request
from starlette.routing import Route

from adapters.slack import SlackAdapter
from adapters.slack.ingress import bolt_request
from adapters.slack.plain_events import plain_message
from bench import lean_slack
from bench.bench_throughput import signed_post
from bench.harness import asgi_scope, call_asgi, in_process_settings
from bridge.admission import Admission
from bridge.http import create_app
from bridge.metrics import Metrics
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.redismux import MuxRedis

_ACCEPTED = SubmitResult(accepted=True, reason="stored")


class NullInbox:
    """Takes every message and stores nothing."""

    def __init__(self) -> None:
        self.taken = 0

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.taken += 1
        return _ACCEPTED

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return False


Layer = Callable[[bytes, dict[str, str]], Awaitable[object]]


async def per_event(
    layer: Layer, posts: list[tuple[str, bytes, dict[str, str]]], rounds: int
) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _, raw, headers in posts:
            await layer(raw, headers)
        best = min(best, (time.process_time() - started) / len(posts))
    return best * 1e6


async def main(args: argparse.Namespace) -> None:
    slack = lean_slack.LeanSlack(lambda ts, at: None)
    await slack.start()
    workdir = Path(tempfile.mkdtemp(prefix="engage-ackpath-"))
    options, settings = in_process_settings(workdir, slack.api_url, "redis://127.0.0.1:9")
    # A client that is never connected: the inbox stores nothing, the route reads nothing.
    redis = MuxRedis.from_url("redis://127.0.0.1:9")
    adapter = SlackAdapter(settings, redis, options=options)
    await adapter.start()
    inbox = NullInbox()
    routes = list(adapter.routes(inbox))  # type: ignore[arg-type]

    async def readiness() -> dict[str, str]:
        return {}

    app = create_app(
        metrics=Metrics(), readiness=readiness, routes=routes, admission=Admission(0.5)
    )
    route = next(r for r in routes if isinstance(r, Route) and r.path == "/slack/events")
    endpoint = route.endpoint
    bolt: Any = adapter._app

    async def whole_app(raw: bytes, headers: dict[str, str]) -> object:
        status = await call_asgi(app, raw, headers)
        assert status == 200, status
        return status

    async def guarded_route(raw: bytes, headers: dict[str, str]) -> object:
        return await call_asgi(route, raw, headers)

    async def guarded_endpoint(raw: bytes, headers: dict[str, str]) -> object:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        return await endpoint(Request(asgi_scope(raw, headers), receive))

    async def bolt_dispatch(raw: bytes, headers: dict[str, str]) -> object:
        request = Request(asgi_scope(raw, headers))
        return await bolt.async_dispatch(bolt_request(request, raw))

    async def plain_listener(raw: bytes, headers: dict[str, str]) -> object:
        body = plain_message(raw)
        assert body is not None
        return await adapter._on_plain_message(body)

    layers = {
        "whole ASGI app (middleware, guard, Slack route)": whole_app,
        "the Slack route alone (Route, guard, SlackIngress)": guarded_route,
        "guarded endpoint (guard's checks + SlackIngress.handle)": guarded_endpoint,
        "plain message: parse and shape check + our listener": plain_listener,
        "Bolt (not on the path of a plain message): request + dispatch + our listener": (
            bolt_dispatch
        ),
    }
    posts = [signed_post(n, 7) for n in range(args.events)]
    for layer in layers.values():  # warm-up
        await per_event(layer, posts[:200], 1)
    print(f"{args.events} events per round, min of {args.rounds} rounds, uvloop")
    for name, layer in layers.items():
        print(f"  {await per_event(layer, posts, args.rounds):7.1f} µs  {name}")
    assert inbox.taken > 0
    await adapter.aclose()
    await slack.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    uvloop.run(main(parser.parse_args()))
