"""The aiohttp transport keeps httpx's errors, timeouts and retry safety, over real loopback."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bridge.engage import errors
from bridge.engage.aiohttp_transport import AiohttpTransport, aiohttp_timeout
from bridge.engage.client import EngageClient
from bridge.engage.models import UserMessage
from bridge.engage.retry import Failure, RetryEvent, RetryPolicy
from tests.engage_mock import message as mock_message
from tests.redis_server import free_port

pytestmark = pytest.mark.timeout(20)

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
Respond = Callable[[bytes, bytes], Awaitable[bytes | None]]


@dataclass
class RawServer:
    """A bare HTTP/1.1 server: what arrived on the wire, and how many connections carried it."""

    url: str
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def raw_server(
    respond: Respond | None = None, *, read: bool = True, close_after_reply: bool = False
) -> AsyncIterator[RawServer]:
    """Serves `respond`'s replies on keep-alive connections (None: close without a reply).

    `close_after_reply` closes the connection after the first reply; `read=False` never reads.
    """
    handlers: set[asyncio.Task[None]] = set()
    server_info = RawServer(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        server_info.connections += 1
        try:
            if not read:
                await asyncio.Event().wait()
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                server_info.requests.append((head, body))
                reply = await respond(head, body) if respond else None
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if close_after_reply:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # Cancelled only by this server on exit; ending quietly keeps asyncio from logging.
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server_info.url = f"http://127.0.0.1:{port}"
    try:
        yield server_info
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers)


def json_reply(payload: object, *, status: str = "200 OK", gzipped: bool = False) -> bytes:
    body = json.dumps(payload).encode()
    extra = b""
    if gzipped:
        body, extra = gzip.compress(body), b"Content-Encoding: gzip\r\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def message(content: str = "hi") -> dict[str, Any]:
    return mock_message(content=content)


def client_for(url: str, **kwargs: Any) -> EngageClient:
    return EngageClient(base_url=url, api_key="key-1", org_id="org-1", retry=FAST, **kwargs)


async def test_requests_reach_the_wire_as_httpx_builds_them_on_one_kept_alive_connection() -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        return json_reply([message()])

    async with raw_server(respond) as server, client_for(server.url) as client:
        for _ in range(3):
            await client.chat("c/1", [UserMessage(content="q")], agent="parrot")
    head, body = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/conversations/c%2F1/chat?agent=parrot HTTP/1.1"
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    assert headers["x-api-key"] == "key-1"
    assert headers["x-org-id"] == "org-1"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert headers["user-agent"].startswith("python-httpx/")
    assert json.loads(body) == {"messages": [{"role": "user", "content": "q", "name": None}]}
    assert len(server.requests) == 3
    assert server.connections == 1


async def test_a_gzipped_response_is_decoded_by_httpx() -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        return json_reply([message("unzipped")], gzipped=True)

    async with raw_server(respond) as server, client_for(server.url) as client:
        answer = await client.chat("c1", [], agent="parrot")
    assert [m.content for m in answer] == ["unzipped"]


async def test_a_refused_connection_is_not_sent_so_chat_is_retried_then_a_connect_error() -> None:
    retries: list[RetryEvent] = []
    url = f"http://127.0.0.1:{free_port()}"
    async with client_for(url, on_retry=retries.append) as client:
        with pytest.raises(errors.EngageConnectError) as caught:
            await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert [event.failure for event in retries] == [Failure.NOT_SENT, Failure.NOT_SENT]


async def test_a_server_closing_after_reading_the_chat_makes_its_outcome_unknown() -> None:
    async with raw_server() as server, client_for(server.url) as client:
        with pytest.raises(errors.ChatOutcomeUnknown) as caught:
            await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert len(server.requests) == 1


async def test_a_chat_without_an_answer_in_time_is_a_read_timeout_and_unknown() -> None:
    async def never(head: bytes, body: bytes) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with raw_server(never) as server, client_for(server.url, timeout=0.2) as client:
        with pytest.raises(errors.ChatOutcomeUnknown) as caught:
            await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(server.requests) == 1


async def test_a_read_that_times_out_is_retried_and_ends_as_a_timeout_error() -> None:
    async def never(head: bytes, body: bytes) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with raw_server(never) as server, client_for(server.url, timeout=0.1) as client:
        with pytest.raises(errors.EngageTimeoutError):
            await client.get_messages("c1")
    assert len(server.requests) == 3


async def test_a_stream_cut_off_mid_way_raises_chat_outcome_unknown() -> None:
    event = b"data: " + json.dumps(message("first")).encode() + b"\n\n"

    async def one_event(head: bytes, body: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(event), event)
        )

    received: list[str] = []

    async def consume(client: EngageClient) -> None:
        async for answer in client.chat_stream("c1", [UserMessage(content="q")], agent="p"):
            received.append(answer.content)

    async with (
        raw_server(one_event, close_after_reply=True) as server,
        client_for(server.url) as client,
    ):
        with pytest.raises(errors.ChatOutcomeUnknown, match="after 1 message") as caught:
            await consume(client)
    assert received == ["first"]
    assert isinstance(caught.value.__cause__, httpx.ReadError)
    assert len(server.requests) == 1


async def test_waiting_for_a_free_connection_too_long_is_a_connect_timeout_not_sent() -> None:
    async def never(head: bytes, body: bytes) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    transport = AiohttpTransport(limits=httpx.Limits(max_connections=1))
    timeout = httpx.Timeout(5.0, connect=0.1, pool=0.2)
    async with (
        raw_server(never) as server,
        httpx.AsyncClient(transport=transport, timeout=timeout) as http,
    ):
        busy = asyncio.create_task(http.get(server.url + "/busy"))
        while not server.requests:
            await asyncio.sleep(0.01)
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(server.url + "/queued")
        busy.cancel()
        with suppress(asyncio.CancelledError):
            await busy
    assert len(server.requests) == 1


async def test_a_large_body_arrives_whole_with_its_length() -> None:
    async def ok(head: bytes, body: bytes) -> bytes:
        return json_reply({})

    payload = bytes(range(256)) * 4096  # 1 MiB: sent in slices
    async with raw_server(ok) as server, httpx.AsyncClient(transport=AiohttpTransport()) as http:
        response = await http.post(server.url + "/big", content=payload)
    head, body = server.requests[0]
    assert response.status_code == 200
    assert body == payload
    assert b"content-length: 1048576" in head.lower()
    assert b"transfer-encoding" not in head.lower()


async def test_a_body_the_server_never_reads_is_a_write_timeout() -> None:
    timeout = httpx.Timeout(5.0, write=0.3)
    async with (
        raw_server(read=False) as server,
        httpx.AsyncClient(transport=AiohttpTransport(), timeout=timeout) as http,
    ):
        with pytest.raises(httpx.WriteTimeout):
            await http.post(server.url + "/big", content=b"x" * (64 * 1024 * 1024))


def test_httpx_timeouts_become_aiohttp_ones() -> None:
    timeouts = {"connect": 2.0, "read": 30.0, "write": 5.0, "pool": 10.0}
    converted = aiohttp_timeout(timeouts)
    assert (converted.total, converted.connect) == (None, 10.0)
    assert (converted.sock_connect, converted.sock_read) == (2.0, 30.0)
    unbounded = aiohttp_timeout(dict.fromkeys(timeouts))
    assert (unbounded.connect, unbounded.sock_connect, unbounded.sock_read) == (None, None, None)


async def test_the_owned_client_keeps_cookies_a_response_sets_and_parses_none_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    extract = httpx.Cookies.extract_cookies

    def counting(self: httpx.Cookies, response: httpx.Response) -> None:
        parsed.append(response.request.url.path)
        extract(self, response)

    monkeypatch.setattr(httpx.Cookies, "extract_cookies", counting)

    async def respond(head: bytes, body: bytes) -> bytes:
        reply = json_reply([message()])
        if b"/first/" in head.split(b"\r\n", 1)[0]:
            return reply.replace(b"\r\n\r\n", b"\r\nSet-Cookie: lb=7; Path=/\r\n\r\n", 1)
        return reply

    async with raw_server(respond) as server, client_for(server.url) as client:
        await client.chat("first", [], agent="parrot")
        await client.chat("second", [], agent="parrot")
    assert parsed == ["/v1/conversations/first/chat"]
    second_head = server.requests[1][0].decode().lower()
    assert "cookie: lb=7" in second_head
