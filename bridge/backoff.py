"""Jittered exponential backoff that honours a server's Retry-After (pure)."""

from __future__ import annotations

import random


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
