"""When an Engage Smarter request may be repeated, and how long to wait first (pure functions)."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from bridge import backoff


class Safety(enum.Enum):
    """How safe it is to send a request a second time."""

    # Repeating has the same effect as sending once: GETs, PATCH, save/unsave, tag add/remove.
    IDEMPOTENT = "idempotent"
    # Repeating could do it twice (create, add messages, chat): only when it provably never
    # reached the server, or the server refused it with 429.
    UNSENT_ONLY = "unsent-only"


class Failure(enum.Enum):
    """What went wrong with one attempt."""

    NOT_SENT = "not-sent"  # connect error, connect timeout, pool timeout
    NO_RESPONSE = "no-response"  # sent (maybe partly), then read/write failed or timed out
    RATE_LIMITED = "rate-limited"  # 429
    SERVER_ERROR = "server-error"  # 5xx
    REJECTED = "rejected"  # any other non-2xx: repeating cannot help


class Verdict(enum.Enum):
    RETRY = "retry"
    RAISE = "raise"  # raise the error as it is
    UNKNOWN = "unknown"  # raise OutcomeUnknown: the request may have taken effect


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per request, and `bridge.backoff.delay` between them (base * 2**(n-1), at most
    `max_delay`, full jitter; a Retry-After is a floor). A Retry-After longer than
    `max_retry_after` is not waited for: the RateLimited error goes to the caller instead.
    `EngageClient.from_settings` fills it from ENGAGE_BRIDGE_AGENT_ATTEMPTS / _BACKOFF_*."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0


@dataclass(frozen=True)
class RetryEvent:
    """Passed to the client's `on_retry` hook before each repeated attempt."""

    method: str
    path: str
    attempt: int  # the attempt that failed, 1-based
    failure: Failure
    delay: float


OnRetry = Callable[[RetryEvent], None]


def verdict(safety: Safety, failure: Failure) -> Verdict:
    """Whether a failed attempt may be repeated, ignoring the attempt budget."""
    if failure is Failure.REJECTED:
        return Verdict.RAISE
    if failure in (Failure.NOT_SENT, Failure.RATE_LIMITED) or safety is Safety.IDEMPOTENT:
        return Verdict.RETRY
    return Verdict.UNKNOWN


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when no retry should happen."""
    if attempt >= policy.max_attempts:
        return None
    if retry_after is not None and retry_after > policy.max_retry_after:
        return None
    return backoff.delay(
        attempt,
        base=policy.base_delay,
        cap=policy.max_delay,
        retry_after=retry_after,
        longest=policy.max_retry_after,
        rng=rng,
    )
