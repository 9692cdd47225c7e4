"""Slow and flooding clients on the real HTTP server: head deadline, head size, connection cap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.guard import IngressGuard
from bridge.http import MAX_HEAD_BYTES, RETRY_AFTER_SECONDS, HttpServer, create_app
from bridge.metrics import Metrics


async def _ready() -> dict[str, str]:
    return {"redis": "ok"}


@contextlib.asynccontextmanager
async def serving(app: Starlette | None = None, **options: float) -> AsyncIterator[HttpServer]:
    server = HttpServer("127.0.0.1", 0, **options)  # type: ignore[arg-type]
    await server.start(app or create_app(metrics=Metrics(), readiness=_ready))
    try:
        yield server
    finally:
        await server.stop()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded by a generous wait)."""
    return await asyncio.wait_for(reader.read(), timeout=30)


class _Collect(asyncio.Protocol):
    """A client that keeps what arrived before the connection ended, even by a reset.

    A client still writing after the server answered and closed gets an RST; a StreamReader
    then raises ConnectionResetError before the buffered answer is read (flaky under load).
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


async def _connect(port: int) -> tuple[asyncio.Transport, _Collect]:
    loop = asyncio.get_running_loop()
    return await loop.create_connection(_Collect, "127.0.0.1", port)


async def _answer(client: _Collect) -> bytes:
    await asyncio.wait_for(client.ended, timeout=30)
    return bytes(client.data)


async def test_a_client_dribbling_its_headers_is_dropped_while_others_are_served() -> None:
    async with serving(head_timeout=0.5) as server:
        transport, dribbler = await _connect(server.port)
        transport.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        dribbling = asyncio.create_task(_dribble(transport))
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
        answer = await _answer(dribbler)
        dribbling.cancel()
        transport.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def _dribble(transport: asyncio.Transport) -> None:
    for i in range(1000):
        if transport.is_closing():
            return
        transport.write(b"X-%d: y\r\n" % i)
        await asyncio.sleep(0.1)


async def test_a_silent_connection_is_closed_without_an_answer() -> None:
    async with serving(head_timeout=0.5) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        answer = await _read_all(reader)
        writer.close()
    assert answer == b""


async def test_a_kept_alive_connection_is_served_again_within_the_deadline() -> None:
    async with (
        serving(head_timeout=0.5) as server,
        httpx.AsyncClient(base_url=server.url, timeout=5) as client,
    ):
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200


async def test_a_head_over_the_cap_is_400_and_the_connection_closed() -> None:
    # The cap applies while a head is incomplete (one that arrives whole in a single read,
    # at most 256 KiB, passes), so the memory a head can take is bounded either way.
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD_BYTES)
        await writer.drain()
        answer = await _read_all(reader)
        writer.close()
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            after = await client.get("/healthz")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert after.status_code == 200


async def test_a_head_growing_over_the_cap_across_reads_is_400() -> None:
    async with serving() as server:
        transport, client = await _connect(server.port)
        transport.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for i in range(MAX_HEAD_BYTES // 1000 + 2):
            if transport.is_closing():
                break
            transport.write(b"X-%03d: %s\r\n" % (i, b"a" * 990))
            await asyncio.sleep(0.01)  # separate reads on the server
        answer = await _answer(client)
        transport.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_a_body_in_the_same_read_as_its_head_does_not_count_against_the_head_cap() -> None:
    app = Starlette(
        routes=[Route("/in", _echo_length, methods=["POST"])],
        middleware=[Middleware(IngressGuard, limit=1024 * 1024)],
    )
    body = b"x" * (4 * MAX_HEAD_BYTES)
    async with serving(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = b"POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        writer.write(head + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        echoed = await asyncio.wait_for(reader.readexactly(length), timeout=30)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert echoed == str(len(body)).encode()


async def test_the_next_request_on_a_kept_alive_connection_has_the_deadline_too() -> None:
    async with serving(head_timeout=0.5) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await asyncio.wait_for(reader.readexactly(length), timeout=30)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        await writer.drain()
        second = await _read_all(reader)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 408 ")


async def test_connections_beyond_the_cap_get_503_and_the_server_recovers() -> None:
    async with serving(max_connections=3, head_timeout=60) as server:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            refused = await client.get("/healthz")
        for _, writer in idle:
            writer.close()
            await writer.wait_closed()
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            served = await _eventually_ok(client)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert served == 200


async def _eventually_ok(client: httpx.AsyncClient) -> int:
    # The server notices the closed idle connections asynchronously.
    for _ in range(200):
        status = (await client.get("/healthz")).status_code
        if status == 200:
            return status
        await asyncio.sleep(0.05)
    return status


async def _echo_length(request: Request) -> Response:
    return Response(str(len(await request.body())))


def _guarded_app() -> Starlette:
    routes = [Route("/in", _echo_length, methods=["POST"])]
    guard = Middleware(IngressGuard, limit=1024, read_timeout=0.5)
    return Starlette(routes=routes, middleware=[guard])


async def test_a_body_too_slow_ends_the_connection_with_the_408() -> None:
    async with serving(_guarded_app()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # 1 byte of 100 declared, then nothing
        writer.write(b"POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        answer = (await _read_all(reader)).lower()
        writer.close()
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            fine = await client.post("/in", content=b"x" * 10)
            large = await client.post("/in", content=b"x" * 5000)
    assert answer.startswith(b"http/1.1 408 ")
    assert b"\r\nconnection: close\r\n" in answer
    assert fine.text == "10"
    assert fine.headers.get("connection") != "close"
    # A 413 keeps the connection: a client still sending its body reads the answer.
    assert large.status_code == 413
    assert large.headers.get("connection") != "close"
