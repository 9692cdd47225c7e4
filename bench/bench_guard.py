"""What the ingress guard costs per request: the same routes with and without it, in-process.

Run: flock /tmp/engage-bench.lock timeout 300 .venv/bin/python -m bench.bench_guard
  [--requests 5000] [--rounds 7]

Calls the Starlette apps as ASGI directly (no sockets, no uvicorn) so the figures are the
guard's own CPU (process CPU time, not wall time). Pairs, measured in alternating rounds
(median of rounds, microseconds of CPU per request):
- GET (no body): a plain app vs the same app inside `IngressGuard`;
- POST 2 KB JSON: a plain endpoint that reads the body vs `IngressGuard` + `guarded(...)`
  with the Slack verifier (HMAC-SHA256 of the body) and a media-type check;
- Slack url_verification through real Bolt: Bolt's Starlette handler as on db5f0ba vs
  `SlackIngress` (guard, HMAC, defensive parse, then the same Bolt dispatch).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters.slack.ingress import SlackIngress
from adapters.slack.signing import sign, verifier
from bridge.guard import IngressGuard, guarded

SECRET = "bench-signing-secret-0123456789"  # noqa: S105
PATH = "/slack/events"


def scope_for(method: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip


async def call(app: Any, method: str, raw: bytes, headers: dict[str, str]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(method, headers), receive, send)
    return status


def signed_headers(raw: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "content-type": "application/json",
        "content-length": str(len(raw)),
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": sign(SECRET, stamp, raw),
    }


async def read_and_answer(request: Request) -> Response:
    await request.body()
    return PlainTextResponse("ok")


def plain_and_guarded() -> tuple[Starlette, Starlette]:
    plain = Starlette(routes=[Route(PATH, read_and_answer, methods=["GET", "POST"])])
    endpoint = guarded(read_and_answer, verify=verifier(SECRET), media_types={"application/json"})
    routes = [Route(PATH, endpoint, methods=["POST"])]
    return plain, Starlette(routes=routes, middleware=[Middleware(IngressGuard)])


def bolt_pair() -> tuple[Starlette, Starlette]:
    client = AsyncWebClient(token="xoxb-bench", base_url="http://127.0.0.1:9/api/")  # noqa: S106
    old = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)
    new = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)
    handler = AsyncSlackRequestHandler(old)

    async def old_endpoint(request: Request) -> Response:
        return await handler.handle(request)

    before = Starlette(routes=[Route(PATH, old_endpoint, methods=["POST"])])
    ingress = SlackIngress(new, SECRET)
    after = Starlette(routes=[ingress.route(PATH)], middleware=[Middleware(IngressGuard)])
    return before, after


async def per_request(app: Any, method: str, raw: bytes, headers: dict[str, str], n: int) -> float:
    # CPU time of this process: the cores are shared, so wall time would measure neighbours too.
    started = time.process_time()
    for _ in range(n):
        status = await call(app, method, raw, headers)
    elapsed = time.process_time() - started
    assert status == 200, status
    return elapsed / n * 1e6


async def main(requests: int, rounds: int) -> None:
    body = json.dumps({"type": "event_callback", "event": {"text": "x" * 1900}}).encode()
    challenge = json.dumps({"type": "url_verification", "challenge": "c", "token": "t"}).encode()
    plain, guarded_app = plain_and_guarded()
    get_guard = IngressGuard(plain)
    before, after = bolt_pair()
    headers = signed_headers(body)
    challenge_headers = signed_headers(challenge)
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            "GET, no body",
            lambda: per_request(plain, "GET", b"", {}, requests),
            lambda: per_request(get_guard, "GET", b"", {}, requests),
        ),
        (
            "POST 2 KB JSON, Slack HMAC",
            lambda: per_request(plain, "POST", body, headers, requests),
            lambda: per_request(guarded_app, "POST", body, headers, requests),
        ),
        (
            "Slack url_verification, Bolt",
            lambda: per_request(before, "POST", challenge, challenge_headers, requests // 2),
            lambda: per_request(after, "POST", challenge, challenge_headers, requests // 2),
        ),
    ]
    print(
        f"{requests} requests x {rounds} rounds, median of rounds, microseconds of CPU per request"
    )
    print(f"{'case':32} {'unguarded':>10} {'guarded':>10} {'guard cost':>11}")
    for name, unguarded_run, guarded_run in cases:
        await unguarded_run()  # warm-up
        await guarded_run()
        without: list[float] = []
        with_guard: list[float] = []
        for _ in range(rounds):
            without.append(await unguarded_run())
            with_guard.append(await guarded_run())
        a, b = statistics.median(without), statistics.median(with_guard)
        print(f"{name:32} {a:10.1f} {b:10.1f} {b - a:+11.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
