"""Shared by the Zendesk and Chatwoot adapters: retried REST calls, quiet notices, replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, overload

import httpx
from starlette.responses import JSONResponse

from bridge import backoff, commands
from bridge.adapter import Inbox
from bridge.errors import PermanentPlatformError, StorageUnavailable
from bridge.models import InboundMessage, Reply, ReplyKind

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
# Whether a call that failed ambiguously took effect after all (looked up on the desk).
Applied = Callable[[], Awaitable[bool]]

# Both desks send small JSON bodies; the ingress guard refuses anything else.
MAX_BODY_BYTES = 1024 * 1024
JSON = frozenset({"application/json"})

# Message ids the adapters give to desk *state* changes (status, assignment) and to the sync
# commands derived from a conversation's status: the desk already shows those changes, so the
# notices they cause are not posted back (see `is_quiet_notice`).
EVENT_PREFIX = "event:"
SYNC_PREFIX = "sync:"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per call; waits double from `base` up to `cap`, a Retry-After is a floor."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 8.0


def is_transient(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def retry_after(response: httpx.Response) -> float | None:
    return backoff.parse_retry_after(response.headers.get("retry-after"))


class DeskApi:
    """One retry layer for a desk's REST API: 429/5xx/timeouts are retried, other 4xx are not.

    Running out of attempts raises `PermanentPlatformError`: the core stores the turn as a dead
    letter (replayable) instead of hammering a desk that is down.
    """

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.http = http
        self._policy = policy or RetryPolicy()
        self._sleep = sleep

    @overload
    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        applied: None = None,
    ) -> httpx.Response: ...

    @overload
    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        applied: Applied,
    ) -> httpx.Response | None: ...

    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        applied: Applied | None = None,
    ) -> httpx.Response | None:
        """The successful response. With `applied`, a call that failed after it may have taken
        effect (a 5xx, a timeout once sent) is repeated only if `applied()` says it did not:
        then `None` means it had."""
        policy, problem = self._policy, "no attempt made"
        for attempt in range(1, policy.attempts + 1):
            wait: float | None = None
            unsure = False
            try:
                response = await self.http.request(
                    method, url, json=json, headers=headers, auth=auth
                )
            except httpx.TransportError as exc:
                problem = type(exc).__name__
                unsure = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            else:
                if response.is_success:
                    return response
                if not is_transient(response.status_code):
                    raise PermanentPlatformError(
                        f"{self.name} API refused {method} with HTTP {response.status_code}"
                    )
                problem, wait = f"HTTP {response.status_code}", retry_after(response)
                unsure = response.status_code >= 500
            log.warning("%s API attempt %d failed: %s", self.name, attempt, problem)
            if attempt < policy.attempts:
                await self._sleep(
                    backoff.delay(attempt, base=policy.base, cap=policy.cap, retry_after=wait)
                )
                if unsure and applied is not None and await applied():
                    log.info("%s API: the failed %s had taken effect", self.name, method)
                    return None
        raise PermanentPlatformError(
            f"{self.name} API failed {policy.attempts} times (last: {problem})"
        )


def is_command_note(text: str) -> bool:
    """An agent's note that is exactly a bridge command (`resume`, `agent NAME`): notes stay
    internal, so agents steer the bridge with them without the customer seeing it."""
    words = text.strip().lstrip("/!").split()
    if not words or words[0].lower() not in commands.NAMES:
        return False
    return len(words) == (2 if words[0].lower() == "agent" else 1)


def is_desk_state_change(message_id: str) -> bool:
    return message_id.startswith((EVENT_PREFIX, SYNC_PREFIX))


def is_quiet_notice(reply: Reply) -> bool:
    """A notice caused by a status change made in the desk itself: the desk shows it already."""
    if reply.kind is not ReplyKind.NOTICE:
        return False
    _, _, cause = reply.idempotency_key.partition(":")
    return is_desk_state_change(cause)


def error(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def submit_all(
    inbox: Inbox,
    messages: tuple[InboundMessage, ...],
    event_id: str,
    *,
    unavailable_status: int,
) -> JSONResponse:
    """Store `messages` in order; the answer the desk gets once they are durable (or not)."""
    if not messages:
        return JSONResponse({"status": "ignored", "event_id": event_id}, status_code=202)
    outcomes: list[str] = []
    try:
        for message in messages:
            result = await inbox.submit(message)
            outcomes.append(result.extra.get("outcome", "accepted"))
    except StorageUnavailable:
        log.warning("desk event %s not stored: storage unavailable", event_id)
        response = error(unavailable_status, "storage unavailable, retry later")
        response.headers["Retry-After"] = "5"
        return response
    status = "accepted" if "accepted" in outcomes else outcomes[-1]
    return JSONResponse({"status": status, "event_id": event_id})
