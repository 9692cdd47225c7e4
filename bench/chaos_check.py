"""The chaos run's verdict: every user message answered exactly once, in order within its thread.

A parrot answer to coalesced messages quotes several user texts, so the unit checked is the
user text (a unique token), not the answer: each token must appear in exactly one posted answer,
and within a thread the tokens must appear in the order they were sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TOKEN = re.compile(r"\b(q\d{6}m\d)\b")
RETRIED_TURN = re.compile(r"turn attempt (\d+) of \d+")


def token(thread: int, index: int) -> str:
    return f"q{thread:06d}m{index}"


def index_of(tok: str) -> int:
    return int(tok.rsplit("m", 1)[1])


@dataclass
class Verdict:
    sent: int
    answered: int = 0
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    order_violations: list[str] = field(default_factory=list)
    strangers: list[str] = field(default_factory=list)
    coalesced_answers: int = 0
    # Dead-lettered texts: explained when the agent refused them for good (a 4xx), not when a
    # transient fault or the poison limit parked them; a text both answered and parked is wrong.
    parked_permanent: list[str] = field(default_factory=list)
    parked_unexplained: list[str] = field(default_factory=list)
    answered_and_parked: list[str] = field(default_factory=list)
    parked_without_apology: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.twice
            or self.order_violations
            or self.strangers
            or self.parked_unexplained
            or self.answered_and_parked
            or self.parked_without_apology
        )


PERMANENT_AGENT_ERRORS = re.compile(
    r"\b(BadRequest|Unauthorized|Forbidden|NotFound|MethodNotAllowed|AlreadyExists|Unprocessable):"
)


def is_permanent(error: str) -> bool:
    return bool(PERMANENT_AGENT_ERRORS.search(error))


def judge(
    sent: Mapping[str, str],
    answers: Iterable[tuple[str, str]],
    parked: Mapping[str, str] | None = None,
    apology: str = "",
) -> Verdict:
    """`sent`: token -> thread id; `answers`: (thread id, text) in posting order; `parked`:
    token -> the error of the dead letter holding it; `apology`: what a parked thread is told."""
    parked = parked or {}
    answers = list(answers)
    apologised = {thread for thread, text in answers if apology and text == apology}
    seen: dict[str, int] = {}
    last_index: dict[str, int] = {}
    verdict = Verdict(sent=len(sent))
    for thread, text in answers:
        tokens = TOKEN.findall(text)
        if len(tokens) > 1:
            verdict.coalesced_answers += 1
        for tok in tokens:
            if sent.get(tok) != thread:
                verdict.strangers.append(tok)
                continue
            seen[tok] = seen.get(tok, 0) + 1
            if seen[tok] > 1:
                continue
            if index_of(tok) < last_index.get(thread, -1):
                verdict.order_violations.append(tok)
            last_index[thread] = max(index_of(tok), last_index.get(thread, -1))
    verdict.answered = sum(1 for tok in sent if tok in seen)
    verdict.lost = sorted(tok for tok in sent if tok not in seen and tok not in parked)
    for tok, error in sorted(parked.items()):
        if tok in seen:
            verdict.answered_and_parked.append(tok)
        elif is_permanent(error):
            verdict.parked_permanent.append(tok)
            if sent.get(tok) not in apologised:
                verdict.parked_without_apology.append(tok)
        else:
            verdict.parked_unexplained.append(tok)
    verdict.twice = sorted(tok for tok, n in seen.items() if n > 1)
    return verdict


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def retried_turns(log_lines: Iterable[str]) -> dict[int, int]:
    """Attempt number -> how many turns started again on a batch whose worker died on it."""
    counts: dict[int, int] = {}
    for line in log_lines:
        match = RETRIED_TURN.search(line)
        if match:
            attempt = int(match.group(1))
            counts[attempt] = counts.get(attempt, 0) + 1
    return dict(sorted(counts.items()))
