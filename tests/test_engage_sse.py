"""Server-Sent Events parsing of chat streams: the pure decoder and the client's stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.engage import errors
from bridge.engage.models import MessageRead, UserMessage
from bridge.engage.sse import EventReader, iter_payloads, text_encoding
from tests.engage_mock import BrokenStream, Recorder, message, mock_client, sse

pytestmark = pytest.mark.timeout(10)


def data(payload: object) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}"


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def event_stream(*items: str, size: int = 7, content_type: str = "text/event-stream") -> Any:
    """A response whose body arrives in small pieces, cutting lines and events anywhere."""
    body = ("\n".join(items) + "\n").encode()
    headers = {"content-type": content_type}
    return httpx.Response(200, headers=headers, content=chunked(body, size))


async def collect(response: httpx.Response) -> list[dict[str, object]]:
    return [item async for item in iter_payloads(response)]


async def test_multi_line_data_is_joined_and_comments_and_unknown_fields_are_ignored() -> None:
    stream = event_stream(": ping", "data: {", "retry: 5", 'data: "n": 1}', "id: 7", "", "")
    assert await collect(stream) == [{"n": 1}]


async def test_named_events_are_skipped_and_done_ends_the_stream() -> None:
    stream = event_stream(
        data({"n": 1}), "",
        "event: ping", data({"n": "named"}), "",
        "event: message", data({"n": 2}), "",
        "data: [DONE]", "",
        data({"n": 3}), "",
    )  # fmt: skip
    assert await collect(stream) == [{"n": 1}, {"n": 2}]


async def test_a_stream_may_end_without_done_and_a_cut_off_event_is_dropped() -> None:
    assert await collect(event_stream(data({"n": 1}), "", data({"n": "incomplete"}))) == [{"n": 1}]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x1e"])
async def test_unicode_line_breaks_inside_json_are_data_not_line_ends(separator: str) -> None:
    text = f"first{separator}second"
    assert await collect(event_stream(data({"content": text}), "", size=3)) == [{"content": text}]


async def test_crlf_and_cr_line_endings_both_end_lines() -> None:
    body = f"{data({'n': 1})}\r\n\r\n{data({'n': 2})}\r\r".encode()
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    assert await collect(response) == [{"n": 1}, {"n": 2}]


async def test_an_answer_that_is_not_an_event_stream_is_a_stream_error() -> None:
    with pytest.raises(errors.EngageStreamError):
        await collect(event_stream("[]", content_type="application/json"))


@pytest.mark.parametrize("bad", [data({"error": "agent crashed"}), "data: {oops", "data: [1, 2]"])
async def test_error_events_and_unreadable_events_raise_stream_errors(bad: str) -> None:
    with pytest.raises(errors.EngageStreamError):
        await collect(event_stream(data({"n": 1}), "", bad, ""))


async def test_a_falsy_error_key_is_not_an_error() -> None:
    stream = event_stream(data({"n": 1, "error": None}), "", data({"error": ""}), "", "")
    assert len(await collect(stream)) == 2


# Pieces that make streams hard to read: every line ending, fields with and without the space,
# named and unnamed events, comments, Unicode line breaks, a BOM and bytes that are not UTF-8.
PIECES = [
    b"data:", b"data: ", b"data", b"event: ", b"event:message", b"event: ping", b": c", b"id: 1",
    b"retry: 5", b"\r", b"\n", b"\r\n", b"\n\n", b"x", b" ", b":", b"[DONE]",
    "\u00e9\u2028\u0085".encode(), b"\xef\xbb\xbf", b"\xff\xc3",
]  # fmt: skip


async def httpx_sse_events(body: bytes) -> list[str]:
    """What httpx-sse (the reader used before) dispatches: the data of unnamed events."""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return [sse.data async for sse in EventSource(response).aiter_sse() if sse.event == "message"]


def reader_events(body: bytes, cuts: list[int]) -> list[str]:
    reader, found, start = EventReader(), [], 0
    for cut in sorted(min(cut, len(body)) for cut in cuts):
        found += reader.feed(body[start:cut])
        start = cut
    return found + reader.feed(body[start:]) + reader.end()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(PIECES), max_size=40),
    st.lists(st.integers(min_value=0, max_value=200), max_size=12),
)
def test_the_reader_dispatches_what_httpx_sse_did_however_the_body_is_cut(
    pieces: list[bytes], cuts: list[int]
) -> None:
    body = b"".join(pieces)
    expected = [data for data in asyncio.run(httpx_sse_events(body)) if data]
    # Events without data are skipped by the client either way (httpx-sse also dispatches one
    # that has only an id or retry field).
    assert [data for data in reader_events(body, cuts) if data] == expected


MIXED = b"data: a\r\ndata: b\r\rdata: c\n\r\nevent: ping\r\ndata: d\r\n\r\n: x\rdata:e\r\r"


@pytest.mark.parametrize("cut", range(len(MIXED) + 1))
async def test_a_body_cut_anywhere_gives_the_events_httpx_sse_gave(cut: int) -> None:
    expected = await httpx_sse_events(MIXED)
    assert expected == ["a\nb", "c", "e"]
    assert reader_events(MIXED, [cut]) == expected


@pytest.mark.parametrize(
    "content_type",
    ["text/event-stream", "text/event-stream; charset=utf-8", "text/event-stream;charset=UTF-8",
     'text/event-stream; charset="utf-8"', "text/event-stream; charset=latin-1",
     "text/event-stream; charset=nonsense", "text/event-stream; format=x"],
)  # fmt: skip
@pytest.mark.parametrize("default", ["utf-8", "latin-1", lambda content: "cp1252"])
def test_the_text_encoding_is_the_one_httpx_names(content_type: str, default: Any) -> None:
    response = httpx.Response(200, headers={"content-type": content_type}, default_encoding=default)
    expected = httpx.Response(200, headers={"content-type": content_type}, default_encoding=default)
    assert text_encoding(response, content_type) == (expected.encoding or "utf-8")


async def drain(stream: AsyncIterator[MessageRead], into: list[MessageRead]) -> None:
    async for item in stream:
        into.append(item)


def stream_response(body: bytes | httpx.AsyncByteStream) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if isinstance(body, bytes):
        return httpx.Response(200, headers=headers, content=body)
    return httpx.Response(200, headers=headers, stream=body)


async def test_chat_stream_yields_status_info_and_agent_messages_in_order() -> None:
    rec = Recorder()
    body = sse(
        f"data: {json.dumps(message('status', 'Thinking'))}",
        f"event: keepalive\ndata: {json.dumps({'x': 1})}",
        f"data: {json.dumps(message('info', 'meta'))}",
        f"data: {json.dumps(message('agent', 'Answer'))}",
        "data: [DONE]",
    )
    async with mock_client([stream_response(body)], rec) as client:
        got = [m async for m in client.chat_stream("c1", [UserMessage(content="q")], agent="a")]
    assert [m.role for m in got] == ["status", "info", "agent"]
    assert [m.for_end_users for m in got] == [True, False, True]
    assert [(m.is_status, m.is_info, m.is_agent) for m in got] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert dict(rec.requests[0].url.params) == {"agent": "a", "stream": "true"}


async def test_a_stream_broken_mid_way_raises_chat_outcome_unknown_after_what_arrived() -> None:
    rec = Recorder()
    first = sse(f"data: {json.dumps(message('status', 'Thinking'))}")
    async with mock_client([stream_response(BrokenStream(first))], rec) as client:
        got: list[MessageRead] = []
        stream = client.chat_stream("c1", [UserMessage(content="q")], agent="a")
        with pytest.raises(errors.ChatOutcomeUnknown) as caught:
            await drain(stream, got)
    assert [m.content for m in got] == ["Thinking"]
    assert "after 1 message" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert len(rec.requests) == 1


async def test_chat_stream_is_retried_on_429_and_not_after_a_5xx() -> None:
    rec = Recorder()
    body = sse(f"data: {json.dumps(message())}")
    responses = [httpx.Response(429, json={"detail": "slow down"}), stream_response(body)]
    async with mock_client(responses, rec) as client:
        got = [m async for m in client.chat_stream("c1", [], agent="a")]
    assert len(got) == 1
    assert len(rec.requests) == 2

    rec = Recorder()
    async with mock_client([httpx.Response(503, json={}), stream_response(body)], rec) as client:
        with pytest.raises(errors.ChatOutcomeUnknown) as caught:
            _ = [m async for m in client.chat_stream("c1", [], agent="a")]
    assert isinstance(caught.value.__cause__, errors.ServerError)
    assert len(rec.requests) == 1


async def test_a_4xx_on_a_stream_raises_its_status_error() -> None:
    rec = Recorder()
    async with mock_client([httpx.Response(404, json={"detail": "gone"})], rec) as client:
        with pytest.raises(errors.NotFound):
            _ = [m async for m in client.chat_stream("c1", [], agent="a")]


async def test_an_error_event_in_a_chat_stream_raises_engage_stream_error() -> None:
    rec = Recorder()
    body = sse(f"data: {json.dumps(message())}", 'data: {"error": true}')
    async with mock_client([stream_response(body)], rec) as client:
        got: list[MessageRead] = []
        with pytest.raises(errors.EngageStreamError):
            await drain(client.chat_stream("c1", [], agent="a"), got)
    assert len(got) == 1
