"""Server-Sent Events as Engage Smarter sends them: unnamed JSON events until `[DONE]`.

Read from the body's bytes (issue 13): httpx-sse, used before, decodes text through three more
async generators per stream (`aiter_text`, its line reader, `aiter_sse`), and builds an event
object per event; this reader is ~40 % less CPU per chat stream (BENCHMARKS.md). It keeps what
httpx-sse does: lines end only at CR, LF or CRLF, as the SSE specification says (httpx's
`aiter_lines` also splits at U+2028, U+0085 and other Unicode line breaks, which a JSON answer
may carry unescaped); text is decoded with the response's encoding, bad bytes replaced; an
event is dispatched by a blank line, its data lines joined with LF.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from bridge.engage.errors import EngageStreamError

DONE = "[DONE]"
# The type of an unnamed event (and of one named "message", the same thing in the spec).
UNNAMED = ("", "message")
_CR, _LF = b"\r", b"\n"
_UTF8 = ("charset=utf-8", 'charset="utf-8"')


class EventReader:
    """The data of unnamed events, from the body in pieces cut anywhere (pure)."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self._encoding = encoding
        self._rest = b""  # the start of a line not yet ended (and a CR that may precede an LF)
        self._event = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[str]:
        buffer = self._rest + chunk if self._rest else chunk
        if _CR in buffer:
            # A CR at the very end may be half of a CRLF: it ends its line with the next piece.
            held = _CR if buffer.endswith(_CR) else b""
            if held:
                buffer = buffer[:-1]
            lines = buffer.replace(b"\r\n", _LF).replace(_CR, _LF).split(_LF)
            self._rest = lines.pop() + held
        else:
            lines = buffer.split(_LF)
            self._rest = lines.pop()
        return self._lines(lines)

    def end(self) -> list[str]:
        """At the end of the body: an unended line is dropped with its event, as the spec says;
        one ended by a held CR still counts."""
        rest, self._rest = self._rest, b""
        return self._lines([rest[:-1]]) if rest.endswith(_CR) else []

    def _lines(self, lines: list[bytes]) -> list[str]:
        found: list[str] = []
        for line in lines:
            if not line:
                if self._data and self._decode(self._event) in UNNAMED:
                    found.append(self._decode(_LF.join(self._data)))
                self._event, self._data = b"", []
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
        return found

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self._encoding, "replace")


def message_payload(data: str) -> dict[str, Any] | None:
    """The JSON object an unnamed event carries; None for events the client skips."""
    if not data:
        return None
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise EngageStreamError(f"stream event is not JSON: {data[:200]!r}") from exc
    if not isinstance(payload, dict):
        raise EngageStreamError(f"stream event is not a JSON object: {data[:200]!r}")
    if payload.get("error"):
        raise EngageStreamError(f"the stream reported an error: {payload['error']!r}")
    return payload


def text_encoding(response: httpx.Response, content_type: str) -> str:
    """`response.encoding`, without its header parsing (the email package, ~10 us) in the two
    usual cases: `charset=utf-8` (what Starlette and most servers add to text/event-stream)
    and no parameters at all, where httpx takes the client's default encoding."""
    parameters = content_type.partition(";")[2].strip().lower()
    if parameters in _UTF8:
        return "utf-8"
    default = response.default_encoding
    if not parameters and isinstance(default, str):
        return default or "utf-8"
    return response.encoding or "utf-8"


Chunks = Callable[[], Awaitable[bytes]]  # the body's next piece; b"" at its end


def event_reader(content_type: str, encoding: Callable[[], str]) -> EventReader:
    """The reader for a 2xx answer; one that is not an event stream is an `EngageStreamError`."""
    media_type = content_type.partition(";")[0]
    if "text/event-stream" not in media_type:
        raise EngageStreamError(
            "the chat answer is not an event stream: Expected response header Content-Type "
            f"to contain 'text/event-stream', got {media_type!r}"
        )
    return EventReader(encoding())


async def payloads_from(next_chunk: Chunks, reader: EventReader) -> AsyncIterator[dict[str, Any]]:
    """Message objects from an event stream, ending at `[DONE]` or at the end of the body.

    An event cut off by the end of the body (no blank line after it) is dropped, as the SSE
    specification says.
    """
    while chunk := await next_chunk():
        for data in reader.feed(chunk):
            if data.startswith(DONE):
                return
            payload = message_payload(data)
            if payload is not None:
                yield payload
    for data in reader.end():
        if data.startswith(DONE):
            return
        payload = message_payload(data)
        if payload is not None:
            yield payload


async def iter_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """`payloads_from` an httpx response (decoded as httpx decodes it)."""
    header = response.headers.get("content-type", "")
    reader = event_reader(header, lambda: text_encoding(response, header))
    chunks = response.aiter_bytes()

    async def next_chunk() -> bytes:
        return await anext(chunks, b"")

    async for payload in payloads_from(next_chunk, reader):
        yield payload
