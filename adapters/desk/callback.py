"""Signed reply callbacks to the desk: the desk side's one retry layer (bridge.backoff)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.desk.signing import signed_headers
from bridge import backoff
from bridge.errors import PermanentPlatformError
from bridge.models import Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        return backoff.delay(
            attempt, base=self.base_delay, cap=self.max_delay, retry_after=retry_after
        )


def callback_body(reply: Reply) -> dict[str, Any]:
    """The JSON the desk receives for one reply (see the README's desk section)."""
    return {
        "reply_id": reply.idempotency_key,
        "account_id": reply.thread.workspace,
        "ticket_id": reply.thread.thread,
        "text": reply.text,
        "kind": str(reply.kind),
        "conversation_id": reply.conversation_id,
        "agent": reply.agent,
        "in_reply_to": reply.reply_to_message_id,
    }


def is_transient(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class CallbackSender:
    """POSTs replies to `url`; returns the desk's comment id (or the reply id)."""

    def __init__(
        self,
        url: str,
        secret: str,
        http: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._http = http
        self._retry = retry or RetryPolicy()

    async def send(self, reply: Reply) -> str:
        body = json.dumps(callback_body(reply), separators=(",", ":")).encode()
        last_problem, wait = "no attempt made", None
        for attempt in range(1, self._retry.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._retry.delay(attempt - 1, wait))
            # Sign each attempt anew: a long retry must not outlive the receiver's tolerance.
            headers = signed_headers(self._secret, int(time.time()), body)
            headers["Idempotency-Key"] = reply.idempotency_key
            try:
                response = await self._http.post(self.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                last_problem, wait = f"{type(exc).__name__}", None
                log.warning("desk callback attempt %d failed: %s", attempt, last_problem)
                continue
            if response.is_success:
                return _comment_id(response) or reply.idempotency_key
            if not is_transient(response.status_code):
                raise PermanentPlatformError(
                    f"desk callback refused the reply with HTTP {response.status_code}"
                )
            last_problem = f"HTTP {response.status_code}"
            wait = backoff.parse_retry_after(response.headers.get("retry-after"))
            log.warning("desk callback attempt %d failed: %s", attempt, last_problem)
        raise PermanentPlatformError(
            f"desk callback failed {self._retry.attempts} times (last: {last_problem})"
        )


def _comment_id(response: httpx.Response) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("id"), str | int):
        return str(payload["id"])
    return None
