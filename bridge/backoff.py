"""Jittered exponential backoff that honours a server's Retry-After (pure)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def exponential(attempt: int, *, base: float, cap: float) -> float:
    """The ceiling of attempt `attempt`'s wait: base doubled per attempt, at most `cap`."""
    return min(cap, base * 2.0 ** (attempt - 1))


def delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    longest: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    Full jitter spreads many workers' retries apart; a Retry-After is a floor, honoured up to
    `longest` (default `cap * 4`): a caller that will not wait longer gives up before asking.
    """
    ceiling = exponential(attempt, base=base, cap=cap)
    jittered = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        return max(jittered, min(retry_after, cap * 4 if longest is None else longest))
    return jittered


@dataclass(frozen=True, slots=True)
class Retry:
    """How often one layer tries a call, and how long it waits in between (`delay` above)."""

    attempts: int = 4
    base: float = 1.0
    cap: float = 30.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        return delay(attempt, base=self.base, cap=self.cap, retry_after=retry_after)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
