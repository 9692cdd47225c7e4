"""The owned client's lean path: httpx's bytes on the wire, httpx's errors, no generators left."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bridge.engage import errors
from bridge.engage.aiohttp_transport import AiohttpTransport
from bridge.engage.client import EngageClient
from bridge.engage.lean import Lean
from bridge.engage.models import UserMessage
from bridge.engage.retry import RetryPolicy
from tests.engage_mock import conversation, message
from tests.test_engage_aiohttp_transport import RawServer, json_reply, raw_server

pytestmark = pytest.mark.timeout(20)

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
KEYS = {"X-Api-Key": "key-1", "X-Org-Id": "org-1"}


def event_stream(*payloads: object, gzipped: bool = False) -> bytes:
    body = b"".join(b"data: %s\n\n" % json.dumps(p).encode() for p in payloads)
    body += b"data: [DONE]\n\n"
    extra = b""
    if gzipped:
        body, extra = gzip.compress(body), b"Content-Encoding: gzip\r\n"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)
    )


async def respond(head: bytes, body: bytes) -> bytes:
    line = head.split(b"\r\n", 1)[0]
    if b"stream=true" in line:
        return event_stream(message("status", "thinking"), message("agent", "hello"))
    if line.startswith(b"POST /v1/conversations "):
        return json_reply(conversation(), status="201 Created")
    return json_reply([message()])


async def one_of_each(client: EngageClient) -> list[str]:
    """create, chat, chat_stream and a GET: what a turn and a reconciliation send."""
    created = await client.create_conversation(data={"user": "Grüße"}, source="slack")
    said = [UserMessage(content="q \u2028 ü")]
    seen = [m.content for m in await client.chat(created.id, said, agent="parrot")]
    seen += [m.content async for m in client.chat_stream(created.id, said, agent="parrot")]
    seen += [m.content for m in await client.get_messages(created.id)]
    return seen


@asynccontextmanager
async def lean_client(url: str) -> AsyncIterator[EngageClient]:
    async with EngageClient(base_url=url, api_key="key-1", org_id="org-1", retry=FAST) as client:
        yield client


@asynccontextmanager
async def httpx_client(url: str) -> AsyncIterator[EngageClient]:
    """The same requests through httpx's own client layers (an injected client)."""
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=120.0) as http:
        yield EngageClient(base_url=url, http=http, retry=FAST, **_keys())


def _keys() -> dict[str, str]:
    return {"api_key": KEYS["X-Api-Key"], "org_id": KEYS["X-Org-Id"]}


def canonical(server: RawServer) -> list[tuple[list[bytes], bytes]]:
    """Each request's head lines (the API headers, which an injected client is given per
    request, sorted in) and body."""
    requests = []
    for head, body in server.requests:
        lines = head.split(b"\r\n")
        requests.append((lines[:1] + sorted(lines[1:]), body))
    return requests


async def test_the_lean_path_sends_the_bytes_httpx_sends_and_reads_the_same_answers() -> None:
    async with raw_server(respond) as lean_server, lean_client(lean_server.url) as client:
        assert client._http._lean is not None
        lean_seen = await one_of_each(client)
    async with raw_server(respond) as httpx_server, httpx_client(httpx_server.url) as client:
        assert client._http._lean is None
        httpx_seen = await one_of_each(client)
    assert lean_seen == httpx_seen == ["hi", "thinking", "hello", "hi"]
    lean_requests = canonical(lean_server)
    httpx_requests = canonical(httpx_server)
    port = lean_server.url.rpartition(":")[2].encode()
    other = httpx_server.url.rpartition(":")[2].encode()
    assert len(lean_requests) == 4
    for (lean_head, lean_body), (httpx_head, httpx_body) in zip(
        lean_requests, httpx_requests, strict=True
    ):
        assert lean_head == [line.replace(other, port) for line in httpx_head]
        assert lean_body == httpx_body
    # Kept alive: one connection for the whole POSTs (bridge.http1), one for the rest (aiohttp).
    assert lean_server.connections == 2


async def test_a_chat_stream_read_the_lean_way_leaves_no_async_generator_of_httpx() -> None:
    # httpx reads a body through three async generators; a stream left at [DONE] hands each
    # to the event loop's finalizer hook (a loop wake-up and a task each, per turn).
    started: list[str] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def note(agen: Any) -> None:
        started.append(agen.ag_code.co_filename)
        if firstiter is not None:
            firstiter(agen)

    async with raw_server(respond) as server, lean_client(server.url) as client:
        sys.set_asyncgen_hooks(firstiter=note, finalizer=finalizer)
        try:
            said = [UserMessage(content="q")]
            seen = [m.content async for m in client.chat_stream("c1", said, agent="parrot")]
        finally:
            sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    assert seen == ["thinking", "hello"]
    assert started  # the hook saw the client's own generators
    assert not [path for path in started if "httpx" in path]


async def test_a_compressed_stream_and_body_are_decoded_by_httpx_as_before() -> None:
    async def gzipped(head: bytes, body: bytes) -> bytes:
        if b"stream=true" in head.split(b"\r\n", 1)[0]:
            return event_stream(message("agent", "unzipped stream"), gzipped=True)
        return json_reply([message("agent", "unzipped")], gzipped=True)

    async with raw_server(gzipped) as server, lean_client(server.url) as client:
        said = [UserMessage(content="q")]
        streamed = [m.content async for m in client.chat_stream("c1", said, agent="p")]
        whole = [m.content for m in await client.chat("c1", said, agent="p")]
    assert (streamed, whole) == (["unzipped stream"], ["unzipped"])


async def test_an_error_answer_read_the_lean_way_is_the_same_status_error() -> None:
    async def refuse(head: bytes, body: bytes) -> bytes:
        return json_reply({"detail": "no such agent"}, status="404 Not Found")

    async with raw_server(refuse) as server, lean_client(server.url) as client:
        with pytest.raises(errors.NotFound, match="no such agent"):
            await client.chat("c1", [], agent="nope")
        with pytest.raises(errors.NotFound, match="no such agent"):
            async for _ in client.chat_stream("c1", [], agent="nope"):
                pass
    assert len(server.requests) == 2


def test_a_client_with_a_proxy_from_the_environment_keeps_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    transport = AiohttpTransport()
    assert Lean.over(httpx.AsyncClient(transport=transport), transport) is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert Lean.over(httpx.AsyncClient(transport=transport), transport) is not None
    hooked = httpx.AsyncClient(transport=transport, event_hooks={"request": [print]})
    assert Lean.over(hooked, transport) is None
    assert Lean.over(httpx.AsyncClient(), httpx.AsyncHTTPTransport()) is None


async def test_a_debug_run_still_logs_httpx_s_line_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines: dict[str, list[str]] = {}
    for name, opening in (("lean", lean_client), ("httpx", httpx_client)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="httpx"):
            async with raw_server(respond) as server, opening(server.url) as client:
                await client.create_conversation()
        lines[name] = [r.getMessage().replace(server.url, "URL") for r in caplog.records]
    assert lines["lean"] == lines["httpx"]
    assert lines["lean"] == ['HTTP Request: POST URL/v1/conversations "HTTP/1.1 201 Created"']
