"""Server-Sent Events as Engage Smarter sends them: unnamed JSON events until `[DONE]`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from bridge.engage.errors import EngageStreamError

DONE = "[DONE]"


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Line-by-line decoder following the WHATWG event-stream interpretation rules."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._pending = False

    def feed(self, line: str) -> ServerSentEvent | None:
        """Feed one line (without its line ending); returns an event when a blank line ends one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
            self._pending = True
        elif field == "event":
            self._event = value or None
            self._pending = True
        elif field == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._pending:
            return None
        sse = ServerSentEvent(data="\n".join(self._data), event=self._event, id=self._id)
        self._event, self._data, self._pending = None, [], False
        return sse


def message_payload(sse: ServerSentEvent) -> dict[str, Any] | None:
    """The JSON object an unnamed event carries; None for events the client skips."""
    if sse.event is not None or not sse.data:
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


async def iter_payloads(lines: AsyncIterable[str]) -> AsyncIterator[dict[str, Any]]:
    """Message objects from an event stream, ending at `[DONE]` or at the end of the body.

    An event cut off by the end of the body (no blank line after it) is dropped, as the SSE
    specification says.
    """
    decoder = SSEDecoder()
    async for line in lines:
        sse = decoder.feed(line.rstrip("\r\n"))
        if sse is None:
            continue
        if sse.event is None and sse.data.startswith(DONE):
            return
        payload = message_payload(sse)
        if payload is not None:
            yield payload
