"""bridge.http1's streamed answers over loopback: pieces handed out as they arrive, aiohttp's
errors where aiohttp's stream raises them, the connection pooled only after a whole body."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bridge.engage.client import EngageClient
from bridge.engage.errors import OutcomeUnknown
from bridge.engage.models import UserMessage
from bridge.engage.sse import EventReader, payloads_from
from bridge.http1 import Http1, Stream
from tests.engage_mock import message

pytestmark = pytest.mark.timeout(20)

STEP = object()  # the server waits for the test's go before the next piece
HANG = object()  # the server sends nothing more (until the client hangs up)
CLOSE = object()  # the server hangs up
Piece = bytes | object

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
CHUNKED_HEAD = SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sized(body: bytes) -> list[Piece]:
    return [SSE_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body]


def chunked(*pieces: bytes) -> list[Piece]:
    return [CHUNKED_HEAD, *(chunk(p) for p in pieces), b"0\r\n\r\n"]


@dataclass
class Connection:
    requests: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Scripted:
    """Answers each request with the next script's pieces; notes each connection and when the
    client closed it."""

    scripts: list[list[Piece]]
    url: str = ""
    connections: list[Connection] = field(default_factory=list)
    go: asyncio.Queue[None] = field(default_factory=asyncio.Queue)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection()
        self.connections.append(connection)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                connection.requests += 1
                for piece in self.scripts.pop(0):
                    if piece is CLOSE:
                        return
                    if piece is HANG:
                        await reader.read()  # until the client hangs up
                        return
                    if piece is STEP:
                        await self.go.get()
                        continue
                    assert isinstance(piece, bytes)
                    writer.write(piece)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return
        finally:
            connection.closed.set()
            writer.close()


@asynccontextmanager
async def scripted(*scripts: list[Piece]) -> AsyncIterator[Scripted]:
    state = Scripted(list(scripts))
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await state.handle(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers)


def request(url: str) -> bytes:
    host = url.split("/")[2]
    return b"POST /chat HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\n\r\n{}" % host.encode()


async def open_stream(http1: Http1, server: Scripted) -> Stream:
    return await http1.stream(server.url + "/chat", request(server.url))


async def whole(stream: Stream) -> list[bytes]:
    pieces = []
    while data := await stream.next_chunk():
        pieces.append(data)
    return pieces


EVENTS = [message("status", "thinking"), message("agent", "héllo ☃"), message("agent", "two")]
BODY = b"".join(b"data: %s\r\n\r\n" % json.dumps(e, ensure_ascii=False).encode() for e in EVENTS)
BODY += b"data: [DONE]\r\n\r\n"


def cuts(body: bytes) -> list[bytes]:
    """`body` cut inside "data:", between CR and LF, inside a UTF-8 character and a blank line."""
    points = sorted({3, body.index(b"\r\n") + 1, body.index("☃".encode()) + 1,
                     body.index(b"\r\n\r\n") + 3, len(body) - 5})  # fmt: skip
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


async def test_sse_lines_cut_across_body_pieces_give_the_events_of_the_whole_body() -> None:
    pieces = cuts(BODY)
    script: list[Piece] = [CHUNKED_HEAD]
    for piece in pieces:
        script += [chunk(piece), STEP]
    script.append(b"0\r\n\r\n")
    http1 = Http1(timeout=5.0)
    async with scripted(script) as server:
        stream = await open_stream(http1, server)
        seen: list[bytes] = []

        async def next_piece() -> bytes:
            data = await stream.next_chunk()
            seen.append(data)
            server.go.put_nowait(None)  # the next piece only after this one was read
            return data

        try:
            events = [p async for p in payloads_from(next_piece, EventReader())]
        finally:
            stream.release()
    http1.close()
    assert events == EVENTS
    assert seen[: len(pieces)] == pieces  # handed out as they arrived, cut where they were


async def _aiohttp_error(url: str) -> type[BaseException] | None:
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url + "/chat", data=b"{}") as response,
        ):
            while await response.content.readany():
                pass
    except Exception as exc:
        return type(exc)
    return None


async def _http1_error(url: str) -> type[BaseException] | None:
    http1 = Http1(timeout=0.3)
    try:
        stream = await http1.stream(url + "/chat", request(url))
        try:
            await whole(stream)
        finally:
            stream.release()
    except Exception as exc:
        return type(exc)
    finally:
        http1.close()
    return None


FAILURES: dict[str, tuple[list[Piece], type[BaseException]]] = {
    "closed inside a sized body": (
        [SSE_HEAD + b"Content-Length: 100\r\n\r\ndata: {}\r\n", CLOSE],
        aiohttp.ClientPayloadError,
    ),
    "closed inside a chunked body": (
        [CHUNKED_HEAD, chunk(b"data: {}\r\n"), CLOSE],
        aiohttp.ClientPayloadError,
    ),
    "closed before the head": ([CLOSE], aiohttp.ServerDisconnectedError),
    "no piece within the read timeout": (
        [CHUNKED_HEAD, chunk(b"data: {}\r\n"), HANG],
        aiohttp.SocketTimeoutError,
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_failed_stream_raises_what_aiohttps_stream_raises(case: str) -> None:
    script, expected = FAILURES[case]
    async with scripted(script, script) as server:
        by_aiohttp = await _aiohttp_error(server.url)
        by_http1 = await _http1_error(server.url)
    assert (by_aiohttp, by_http1) == (expected, expected)


async def test_a_whole_stream_leaves_its_connection_in_the_pool() -> None:
    http1 = Http1(timeout=5.0)
    async with scripted(chunked(b"data: 1\n\n"), sized(b"data: 2\n\n")) as server:
        for _ in range(2):
            stream = await open_stream(http1, server)
            await whole(stream)
            stream.release()
        http1.close()
        (only,) = server.connections
    assert only.requests == 2


async def test_an_interim_answer_before_the_head_is_skipped_as_aiohttp_skips_it() -> None:
    http1 = Http1(timeout=5.0)
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
    async with scripted([early, *sized(b"data: 1\n\n")], sized(b"data: 2\n\n")) as server:
        pieces = []
        for _ in range(2):
            stream = await open_stream(http1, server)
            pieces += [stream.status, *await whole(stream)]
            stream.release()
        http1.close()
        connections = len(server.connections)
    assert (pieces, connections) == ([200, b"data: 1\n\n", 200, b"data: 2\n\n"], 1)


async def test_a_body_that_ends_at_close_is_whole_and_its_connection_not_kept() -> None:
    http1 = Http1(timeout=5.0)
    at_close = [SSE_HEAD + b"Connection: close\r\n\r\ndata: 1\n\n", CLOSE]
    async with scripted(at_close, sized(b"data: 2\n\n")) as server:
        stream = await open_stream(http1, server)
        first = b"".join(await whole(stream))
        stream.release()
        stream = await open_stream(http1, server)
        second = b"".join(await whole(stream))
        stream.release()
        http1.close()
        connections = len(server.connections)
    assert (first, second, connections) == (b"data: 1\n\n", b"data: 2\n\n", 2)


@pytest.mark.parametrize("how", ["cancelled", "released early"])
async def test_a_stream_not_read_to_its_end_closes_its_connection(how: str) -> None:
    http1 = Http1(timeout=5.0, limit=1)  # a slot not given back would stop the second stream
    async with scripted([CHUNKED_HEAD, chunk(b"data: 1\n\n"), HANG], sized(b"x")) as server:
        stream = await open_stream(http1, server)
        assert await stream.next_chunk() == b"data: 1\n\n"
        if how == "cancelled":
            reading = asyncio.create_task(stream.next_chunk())
            await asyncio.sleep(0)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
        stream.release()
        await asyncio.wait_for(server.connections[0].closed.wait(), 5)
        second = await asyncio.wait_for(open_stream(http1, server), 5)
        assert await whole(second) == [b"x"]
        second.release()
        http1.close()
        assert [c.requests for c in server.connections] == [1, 1]


async def test_a_turn_cancelled_mid_stream_closes_the_connection_and_the_next_opens_anew() -> None:
    first = event(message("agent", "one"))
    hanging = [CHUNKED_HEAD, chunk(first), HANG]
    done = chunked(event(message("agent", "two")), b"data: [DONE]\n\n")
    async with (
        scripted(hanging, done) as server,
        EngageClient(base_url=server.url, api_key="k", org_id="o") as client,
    ):
        got = asyncio.Event()

        async def turn() -> None:
            async for _ in client.chat_stream("c1", [UserMessage(content="q")], agent="a"):
                got.set()

        task = asyncio.create_task(turn())
        await asyncio.wait_for(got.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.connections[0].closed.wait(), 5)
        said = [UserMessage(content="q")]
        replies = [m.content async for m in client.chat_stream("c1", said, agent="a")]
        assert replies == ["two"]
        assert [c.requests for c in server.connections] == [1, 1]


async def test_a_chat_stream_with_no_piece_within_the_read_timeout_is_an_unknown_outcome() -> None:
    hanging = [CHUNKED_HEAD, chunk(event(message("agent", "one"))), HANG]
    async with (
        scripted(hanging) as server,
        EngageClient(base_url=server.url, api_key="k", org_id="o", timeout=0.3) as client,
    ):
        seen: list[Any] = []

        async def turn() -> None:
            async for m in client.chat_stream("c1", [UserMessage(content="q")], agent="a"):
                seen.append(m.content)

        with pytest.raises(OutcomeUnknown, match=r"broke after 1 message\(s\): ReadTimeout"):
            await turn()
        await asyncio.wait_for(server.connections[0].closed.wait(), 5)
    assert seen == ["one"]


def event(payload: object) -> bytes:
    return b"data: %s\n\n" % json.dumps(payload).encode()
