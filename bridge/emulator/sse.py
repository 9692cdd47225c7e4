"""Server-Sent Events as the platform sends them: unnamed `data:` events, then `data: [DONE]`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from bridge.engage.models import MessageRead

DONE = b"data: [DONE]\n\n"
ERROR_DETAIL = "The agent failed"


class StreamBroken(Exception):
    """Raised to drop the connection mid-stream; the fault middleware swallows it."""


def message_event(message: MessageRead) -> bytes:
    return b"data: " + message.model_dump_json().encode() + b"\n\n"


def error_event() -> bytes:
    # The SDK raises on any event whose JSON has a truthy "error"; the real shape is unknown.
    return b"data: " + json.dumps({"error": True, "detail": ERROR_DETAIL}).encode() + b"\n\n"


async def limited(events: AsyncIterator[bytes], break_after: int | None) -> AsyncIterator[bytes]:
    """Pass events through; after `break_after` of them, break the connection (no [DONE])."""
    sent = 0
    async for event in events:
        if break_after is not None and sent >= break_after:
            raise StreamBroken
        yield event
        sent += 1
