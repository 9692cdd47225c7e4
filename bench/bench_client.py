"""Benchmark: create+chat round trips, our async client vs the official sync SDK, on the emulator.

    .venv/bin/python bench/bench_client.py [--seconds 5] [--concurrency 20] [--rounds 2]
        [--conversations 2000] [--clients ours,sdk,httpcore,httpx-aiohttp,bare] [--stream]

The emulator runs in a child process (so client and server do not share a GIL) on an
ephemeral loopback port. Each client gets the same wall-clock budget; a round trip is
`create_conversation` + `chat` with the `parrot` agent. Four clients: `EngageClient` as built
by default (aiohttp transport), the official SDK, `EngageClient` over httpx's own async
transport (httpcore, the default until this benchmark showed its cost), and a bare
`httpx.AsyncClient` (httpcore) making the same two calls; on request, `EngageClient` over the
httpx-aiohttp package's transport. `--stream` makes the `EngageClient`s chat as turns do
(`chat_stream`, SSE). Memory per conversation is measured
in-process afterwards with tracemalloc: live bytes held by the emulator's state after N
round trips, divided by N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, create_app
from bridge.engage.aiohttp_transport import AiohttpTransport
from bridge.engage.client import EngageClient
from bridge.engage.models import UserMessage

AGENT = "parrot"


@dataclass
class Result:
    name: str
    latencies: list[float]
    wall: float
    cpu: float  # CPU seconds the client process used: less noisy than wall time on a busy host

    def line(self) -> str:
        n = len(self.latencies)
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(n - 1, int(n * 0.99))] * 1000
        rate = n / self.wall
        return (
            f"{self.name:<32} {n:>5} round trips {rate:>6.1f} rt/s {2 * rate:>6.1f} req/s  "
            f"p50 {p50:>6.1f} ms  p99 {p99:>6.1f} ms  client CPU {self.cpu / n * 1000:.2f} ms/rt"
        )


@contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator app served by uvicorn in a child process; yields its loopback URL."""
    args = [sys.executable, __file__, "--serve-emulator"]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        wait_until_up(url)
        yield url
    finally:
        child.terminate()
        child.wait(timeout=10)


def serve_emulator() -> None:
    """Child process: bind an ephemeral loopback port, print its URL, serve until terminated.

    The socket is passed to uvicorn as a TCP socket (not `--fd`, which uvicorn treats as a Unix
    socket, so asyncio skips TCP_NODELAY and Nagle's algorithm adds ~40 ms per response).
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(create_app(), log_level="warning", access_log=False, lifespan="off")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.Server(config).run(sockets=[sock])


def wait_until_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    headers = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID}
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/agents", headers=headers, timeout=1.0).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"emulator at {url} did not start within {timeout}s")


def httpcore_transport() -> httpx.AsyncBaseTransport:
    """httpx's own async transport, with the pool limits `EngageClient` gives its default one."""
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
    )


def httpx_aiohttp_transport() -> httpx.AsyncBaseTransport:
    """The httpx-aiohttp package's transport (not used by the bridge: see BENCHMARKS.md)."""
    import httpx_aiohttp

    return httpx_aiohttp.AiohttpTransport(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
    )


async def bench_ours(
    url: str,
    seconds: float,
    concurrency: int,
    transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    *,
    stream: bool = False,
    over: str = "aiohttp",
) -> Result:
    """`EngageClient` as built by default (aiohttp transport), or over `transport()`; with
    `stream`, chat as the bridge does (`chat_stream`, SSE)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(client: EngageClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conversation = await client.create_conversation(data={"bench": True}, source="bench")
            said = [UserMessage(content="hello")]
            if stream:
                async for _ in client.chat_stream(conversation.id, said, agent=AGENT):
                    pass
            else:
                await client.chat(conversation.id, said, agent=AGENT)
            latencies.append(time.perf_counter() - started)

    # "plain": an injected httpx.AsyncClient over our transport (the owned one skips httpx's
    # per-response cookie parsing when there are no cookies).
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    http = httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=30.0, limits=limits)
    async with EngageClient(
        base_url=url,
        api_key=DEFAULT_API_KEY,
        org_id=DEFAULT_ORG_ID,
        timeout=30.0,
        transport=transport() if transport else None,
        http=http if over == "plain httpx client" else None,
    ) as client:
        begun, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall, cpu = time.monotonic() - begun, time.process_time() - cpu
    await http.aclose()
    how = "stream" if stream else "chat"
    return Result(f"ours {how} over {over} ({concurrency})", latencies, wall, cpu)


async def bench_raw_httpx(url: str, seconds: float, concurrency: int) -> Result:
    """The same round trip with a bare httpx.AsyncClient: what our layer costs on top of it."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    headers = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID}
    message = {"role": "user", "content": "hello", "name": None}

    async def worker(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            created = await http.post("/v1/conversations", json={"data": {}, "source": "bench"})
            chat = f"/v1/conversations/{created.json()['id']}/chat"
            answer = await http.post(chat, params={"agent": AGENT}, json={"messages": [message]})
            answer.json()
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as http:
        begun, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        wall, cpu = time.monotonic() - begun, time.process_time() - cpu
    return Result(f"bare httpx.AsyncClient ({concurrency})", latencies, wall, cpu)


def bench_sdk(url: str, seconds: float, concurrency: int) -> Result:
    from engagesmarter.client import Client
    from engagesmarter.schemas.conversations import ConversationCreate
    from engagesmarter.schemas.messages import UserMessage as SdkUserMessage

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        client = Client(api_url=url, api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID, timeout=30)
        with client._client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                conversation = client.conversations.create(
                    conversation=ConversationCreate(data={"bench": True}, source="bench")
                )
                client.conversations.chat_with_agent(
                    conversation_id=conversation.id,
                    messages=[SdkUserMessage(content="hello")],
                    agent=AGENT,
                )
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)

    begun, cpu = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    wall, cpu = time.monotonic() - begun, time.process_time() - cpu
    return Result(f"engagesmarter SDK ({concurrency} threads)", latencies, wall, cpu)


async def memory_per_conversation(count: int) -> float:
    """Live bytes the emulator keeps per conversation (one user message + one agent answer)."""
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with EngageClient(
        base_url="http://emulator", api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID,
        transport=transport,
    ) as client:  # fmt: skip
        await round_trips(client, 50)  # warm caches and lazily built objects
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await round_trips(client, count)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return (after - before) / count


async def round_trips(client: EngageClient, count: int) -> None:
    for _ in range(count):
        conversation = await client.create_conversation(data={"bench": True}, source="bench")
        await client.chat(conversation.id, [UserMessage(content="hello")], agent=AGENT)


def timed(label: str, run: Callable[[float], Result], seconds: float) -> Result:
    print(f"running {label}...", file=sys.stderr, flush=True)
    return run(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="budget per client")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=2000, help="for the memory figure")
    parser.add_argument(
        "--clients",
        default="ours,sdk,httpcore,bare",
        help="comma-separated, alternated in this order: ours, sdk, httpcore, httpx-aiohttp "
        "(needs the httpx-aiohttp package), plain (ours with an injected httpx client), bare",
    )
    parser.add_argument("--stream", action="store_true", help="ours: chat_stream (SSE) as turns do")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figure")
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator()
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, httpx {httpx.__version__}")
    with emulator_process() as url:
        seconds, concurrency = args.seconds, args.concurrency
        stream = args.stream
        clients: list[tuple[str, Callable[[float], Result]]] = [
            ("ours", lambda t: asyncio.run(bench_ours(url, t, concurrency, stream=stream))),
            ("sdk", lambda t: bench_sdk(url, t, concurrency)),
            (
                "httpcore",
                lambda t: asyncio.run(
                    bench_ours(
                        url, t, concurrency, httpcore_transport, stream=stream, over="httpcore",
                    )
                ),
            ),
            (
                "httpx-aiohttp",
                lambda t: asyncio.run(
                    bench_ours(
                        url, t, concurrency, httpx_aiohttp_transport, stream=stream,
                        over="httpx-aiohttp",
                    )
                ),
            ),
            (
                "plain",
                lambda t: asyncio.run(
                    bench_ours(url, t, concurrency, stream=stream, over="plain httpx client")
                ),
            ),
            ("bare", lambda t: asyncio.run(bench_raw_httpx(url, t, concurrency))),
        ]  # fmt: skip
        clients = [(label, run) for label, run in clients if label in args.clients.split(",")]
        # Warm every client and the emulator up, then alternate so none always goes first.
        for _, run in clients:
            run(1.0)
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}")
            for label, run in clients:
                print("  " + timed(label, run, seconds).line(), flush=True)
    if args.no_memory:
        return
    per_conversation = asyncio.run(memory_per_conversation(args.conversations))
    print(
        f"emulator memory: {per_conversation / 1024:.1f} KiB per conversation "
        f"(tracemalloc, {args.conversations} conversations with 2 messages each)"
    )


if __name__ == "__main__":
    main()
