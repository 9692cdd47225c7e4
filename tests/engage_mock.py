"""An EngageClient over httpx.MockTransport, for narrow unit tests of retries and parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge.engage.client import EngageClient
from bridge.engage.retry import RetryEvent, RetryPolicy

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
BASE_URL = "http://engage.test"
CREATED = "2024-05-01T12:00:00Z"


def message(role: str = "agent", content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "id": extra.pop("id", f"m-{role}-{content}"),
        "org_id": "org",
        "conversation_id": "c1",
        "run_id": "r1",
        "role": role,
        "content": content,
        "name": None,
        "user_id": "u1",
        "created": CREATED,
        **extra,
    }


def conversation(**extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "org_id": "org",
        "data": {},
        "source": "",
        "cloned_from_message_id": None,
        "summary": "",
        "created": CREATED,
        "user_id": "u1",
        "tags": [],
        "is_saved": False,
        **extra,
    }


def sse(*payloads: str) -> bytes:
    return "".join(f"{p}\n\n" for p in payloads).encode()


class BrokenStream(httpx.AsyncByteStream):
    """Sends `chunks`, then fails like a connection dropped mid-body."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


@dataclass
class Recorder:
    """The requests a mock server saw, the waits the client made and its retry events."""

    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    retries: list[RetryEvent] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def mock_client(
    responses: Sequence[httpx.Response | Exception],
    recorder: Recorder,
    *,
    policy: RetryPolicy | None = None,
) -> EngageClient:
    """A client whose n-th request gets `responses[n]` (a response, or an exception raised)."""
    queue = list(responses)

    async def handler(request: httpx.Request) -> httpx.Response:
        recorder.requests.append(request)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return EngageClient(
        base_url=BASE_URL,
        api_key="key-1",
        org_id="org-1",
        transport=httpx.MockTransport(handler),
        retry=policy or RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
        on_retry=recorder.retries.append,
        sleep=recorder.sleep,
    )
