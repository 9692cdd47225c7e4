"""Server-Sent Events as Engage Smarter sends them: unnamed JSON events until `[DONE]`.

The event stream itself is read by httpx-sse (switched from our own reader, issue 13: the same
CPU, ~61 us per chat stream either way, see BENCHMARKS.md; and it splits lines only where the
SSE specification does, while httpx's `aiter_lines` also splits at U+2028, U+0085 and other
Unicode line breaks, which a JSON answer may carry unescaped: our reader broke on them).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from bridge.engage.errors import EngageStreamError

DONE = "[DONE]"
# The type of an unnamed event (and of one named "message", the same thing in the spec).
UNNAMED = "message"


def message_payload(sse: ServerSentEvent) -> dict[str, Any] | None:
    """The JSON object an unnamed event carries; None for events the client skips."""
    if sse.event != UNNAMED or not sse.data:
        return None
    try:
        payload = json.loads(sse.data)
    except json.JSONDecodeError as exc:
        raise EngageStreamError(f"stream event is not JSON: {sse.data[:200]!r}") from exc
    if not isinstance(payload, dict):
        raise EngageStreamError(f"stream event is not a JSON object: {sse.data[:200]!r}")
    if payload.get("error"):
        raise EngageStreamError(f"the stream reported an error: {payload['error']!r}")
    return payload


async def iter_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Message objects from an event stream, ending at `[DONE]` or at the end of the body.

    An event cut off by the end of the body (no blank line after it) is dropped, as the SSE
    specification says; a 2xx that is not an event stream is an `EngageStreamError`.
    """
    try:
        async for sse in EventSource(response).aiter_sse():
            if sse.event == UNNAMED and sse.data.startswith(DONE):
                return
            payload = message_payload(sse)
            if payload is not None:
                yield payload
    except SSEError as exc:
        raise EngageStreamError(f"the chat answer is not an event stream: {exc}") from exc
