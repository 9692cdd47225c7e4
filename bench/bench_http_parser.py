"""Server CPU per request of bridge.http.HttpServer: HTTP parser (h11, httptools) x event loop.

Run: flock /tmp/engage-bench.lock .venv/bin/python -m bench.bench_http_parser [--requests 20000]

Each combination serves POST /in (reads the body, answers 200 with no body: a Slack ack) in its
own process; the driver sends 3 KiB JSON bodies with Slack's headers over 50 kept-alive
connections and divides the server's utime+stime by the requests. `h11` is uvicorn's plain
H11Protocol (what the bridge used before, minus its head deadline timer), `httptools` the
bridge's own protocol (httptools plus the head deadline and cap).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import aiohttp

from bench.cpu_account import process_cpu_seconds

COMBINATIONS = [("h11", "asyncio"), ("httptools", "asyncio"), ("h11", "uvloop"),
                ("httptools", "uvloop")]  # fmt: skip
BODY = b'{"token":"x","type":"event_callback","event":{"text":"' + b"a" * 3000 + b'"}}'


async def serve(parser: str) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from bridge.http import HttpServer

    async def ingest(request: Request) -> Response:
        await request.body()
        return Response(b"")

    server = HttpServer("127.0.0.1", 0)
    if parser == "h11":
        server._protocol = H11Protocol
    await server.start(Starlette(routes=[Route("/in", ingest, methods=["POST"])]))
    print(server.port, flush=True)
    await asyncio.Event().wait()


async def drive(port: int, pid: int, requests: int) -> float:
    headers = {
        "Content-Type": "application/json", "User-Agent": "Slackbot 1.0",
        "X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": str(int(time.time())),
    }  # fmt: skip
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> None:
            async with session.post(f"http://127.0.0.1:{port}/in", data=BODY, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status

        await asyncio.gather(*(post() for _ in range(200)))  # warm up
        todo = iter(range(requests))

        async def user() -> None:
            for _ in todo:
                await post()

        before = process_cpu_seconds(pid)
        await asyncio.gather(*(user() for _ in range(50)))
        return (process_cpu_seconds(pid) - before) / requests


def measure(parser: str, loop: str, requests: int) -> float:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_http_parser", "--serve", parser, "--loop", loop],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        return asyncio.run(drive(port, server.pid, requests))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=["h11", "httptools"])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if args.serve:
        from bridge.eventloop import run

        run(serve(args.serve), use_uvloop=args.loop == "uvloop")
        return
    for n in range(args.rounds):
        for http, loop in COMBINATIONS:
            per_request = measure(http, loop, args.requests)
            print(f"round {n + 1}: {http:9s} {loop:7s} {per_request * 1e6:5.0f} µs/request")


if __name__ == "__main__":
    main()
