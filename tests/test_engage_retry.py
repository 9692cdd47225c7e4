"""The pure retry decisions: which failures repeat, how long to wait, Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from bridge import backoff
from bridge.backoff import parse_retry_after
from bridge.engage.retry import (
    Failure,
    RetryPolicy,
    Safety,
    Verdict,
    next_delay,
    verdict,
)


@pytest.mark.parametrize(
    ("safety", "failure", "expected"),
    [
        (Safety.IDEMPOTENT, Failure.NOT_SENT, Verdict.RETRY),
        (Safety.IDEMPOTENT, Failure.NO_RESPONSE, Verdict.RETRY),
        (Safety.IDEMPOTENT, Failure.RATE_LIMITED, Verdict.RETRY),
        (Safety.IDEMPOTENT, Failure.SERVER_ERROR, Verdict.RETRY),
        (Safety.IDEMPOTENT, Failure.REJECTED, Verdict.RAISE),
        (Safety.UNSENT_ONLY, Failure.NOT_SENT, Verdict.RETRY),
        (Safety.UNSENT_ONLY, Failure.RATE_LIMITED, Verdict.RETRY),
        (Safety.UNSENT_ONLY, Failure.NO_RESPONSE, Verdict.UNKNOWN),
        (Safety.UNSENT_ONLY, Failure.SERVER_ERROR, Verdict.UNKNOWN),
        (Safety.UNSENT_ONLY, Failure.REJECTED, Verdict.RAISE),
    ],
)
def test_only_failures_that_cannot_double_an_effect_are_retried(
    safety: Safety, failure: Failure, expected: Verdict
) -> None:
    assert verdict(safety, failure) is expected


class Fixed(random.Random):
    """uniform(a, b) at a fixed point between a and b."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.at


def test_delay_doubles_per_attempt_up_to_the_maximum_with_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=5.0)
    ceilings = [next_delay(policy, n, rng=Fixed(1.0)) for n in range(1, 6)]
    assert ceilings == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert next_delay(policy, 1, rng=Fixed(0.0)) == 0.5


def test_the_client_waits_by_the_one_backoff_formula() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=4.0)
    for attempt in range(1, 8):
        ours = next_delay(policy, attempt, rng=random.Random(attempt))
        assert ours == backoff.delay(attempt, base=0.5, cap=4.0, rng=random.Random(attempt))


def test_no_delay_once_the_attempts_are_used_up() -> None:
    assert next_delay(RetryPolicy(max_attempts=3), 3) is None


def test_retry_after_is_a_floor_unless_beyond_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=10.0, base_delay=0.1, max_delay=1.0)
    assert next_delay(policy, 1, retry_after=7.0) == 7.0
    assert next_delay(policy, 1, retry_after=11.0) is None


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf"])
def test_unusable_retry_after_values_are_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None
