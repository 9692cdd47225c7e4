"""Fault injection: per emulator (a mutable `Faults`) and per request (`X-Emulator-Faults`).

"The next 2 chat calls fail with 503": `faults.scope = "chat"; faults.fail_next = 2`.
"Half of all calls fail": `faults.rate = 0.5` (seedable: `faults.reseed(1)`). One request can
carry its own: `X-Emulator-Faults: latency=0.2,status=503,rate=0.5,retry_after=1,
break_stream_after=1,agent_delay=2,agent_error=1,lose_response=1`.
"Hold chat calls until I say": `faults.scope = "chat"; faults.hold = True`, then wait for
`faults.held`, then `faults.hold = False`; `hold_answers` / `answers_held` the same one step later
(inputs stored, the agent about to answer). Tests use them to keep a turn at a known point.

Faults apply to `/v1/...` only, never to `/_emulator/...` or the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request

FAULTS_HEADER = "x-emulator-faults"
PLAN_KEY = "emulator_faults"
# How often a held request or answer looks whether it may go on: far below any test's waits.
# Polled, not an asyncio.Event: holds are lifted from other threads (a test beside the
# ThreadedEmulator, the admin route).
_HOLD_POLL_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What happens to one request, decided before it runs."""

    latency: float = 0.0
    fail_status: int | None = None
    retry_after: float | None = None
    # The request is processed in full, then the client gets this status: outcome unknown to it.
    lose_response_status: int | None = None
    break_stream_after: int | None = None
    agent_delay: float = 0.0
    agent_error: bool = False
    # Awaited by the agent just before it answers (Faults.hold_answers).
    answer_gate: Callable[[], Awaitable[None]] | None = None


@dataclass
class Faults:
    """The emulator's standing faults; tests change fields at any time (also via /_emulator/faults).

    scope: "all" (every /v1 route), "chat" (conversation and run chat calls) or a path prefix
    such as "/v1/conversations".
    """

    scope: str = "all"
    latency: float = 0.0
    rate: float = 0.0
    status: int = 503
    retry_after: float | None = None
    fail_next: int = 0
    lose_response_next: int = 0
    break_stream_after: int | None = None
    agent_delay: float = 0.0
    agent_error: bool = False
    # Requests in scope wait before they run (nothing stored yet) until this is False again.
    hold: bool = False
    # Chat calls in scope store their inputs and start their run; the agent then waits just
    # before it answers (after its status texts) until this is False again.
    hold_answers: bool = False
    # How many more runs `hold_answers` catches (None: every one while it is on): 1 holds a
    # first run while a second one, asked after it, answers.
    answers_to_hold: int | None = None
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _waiting: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    # Bumped by reset(): whatever a hold caught before it goes on even if a hold is set again
    # before it looks (an agent still in its own pause when the next test holds answers).
    _epoch: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reseed(self.seed)

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self._rng.seed(seed)

    def reset(self) -> None:
        """Back to no faults at all, in place (the app keeps this same object)."""
        for f in dataclasses.fields(self):
            if f.init:
                setattr(self, f.name, f.default)
        self.reseed(None)
        with self._lock:
            self._epoch += 1

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        hints = typing.get_type_hints(Faults)
        try:
            checked = {n: TypeAdapter(hints[n]).validate_python(v) for n, v in changes.items()}
        except ValidationError as exc:
            raise ValueError(str(exc)) from exc
        for name, value in checked.items():
            if name == "seed":
                self.reseed(value)
            else:
                setattr(self, name, value)

    def matches(self, method: str, path: str) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "chat":
            return method == "POST" and path.endswith("/chat")
        return path.startswith(self.scope)

    @property
    def held(self) -> int:
        """Requests waiting on `hold` right now."""
        return self._count("hold")

    @property
    def answers_held(self) -> int:
        """Agents waiting on `hold_answers` right now."""
        return self._count("hold_answers")

    async def wait_while_held(self, method: str, path: str) -> None:
        if self.matches(method, path):
            await self._wait("hold", self._epoch)

    def answer_gate(self) -> Callable[[], Awaitable[None]]:
        """What a run planned now awaits before its answer: released by `hold_answers = False`
        or by a reset, whichever comes first."""
        epoch = self._epoch

        async def released() -> None:
            await self._wait("hold_answers", epoch)

        return released

    def _count(self, flag: str) -> int:
        with self._lock:
            return self._waiting.get(flag, 0)

    def _holding(self, flag: str, epoch: int) -> bool:
        return bool(getattr(self, flag)) and epoch == self._epoch

    async def _wait(self, flag: str, epoch: int) -> None:
        if not self._holding(flag, epoch):
            return
        with self._lock:
            self._waiting[flag] = self._waiting.get(flag, 0) + 1
        try:
            while self._holding(flag, epoch):  # noqa: ASYNC110
                await asyncio.sleep(_HOLD_POLL_SECONDS)
        finally:
            with self._lock:
                self._waiting[flag] -= 1

    def roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def plan(self, method: str, path: str) -> FaultPlan:
        """Decide this request's faults, consuming the `*_next` counters."""
        if not self.matches(method, path):
            return FaultPlan()
        with self._lock:
            fail = self.fail_next > 0
            if fail:
                self.fail_next -= 1
            lose = not fail and self.lose_response_next > 0
            if lose:
                self.lose_response_next -= 1
            gated = self.hold_answers and self.answers_to_hold != 0
            if gated and self.answers_to_hold is not None:
                self.answers_to_hold -= 1
        fail = fail or self.roll(self.rate)
        return FaultPlan(
            latency=self.latency,
            fail_status=self.status if fail else None,
            retry_after=self.retry_after,
            lose_response_status=self.status if lose else None,
            break_stream_after=self.break_stream_after,
            agent_delay=self.agent_delay,
            agent_error=self.agent_error,
            answer_gate=self.answer_gate() if gated else None,
        )

    def plan_with_header(self, method: str, path: str, header: str | None) -> FaultPlan:
        """The standing plan, overridden field by field by the request's own header."""
        plan = self.plan(method, path)
        if not header:
            return plan
        asked = parse_header(header)
        status = int(asked.get("status", plan.fail_status or self.status))
        if not 400 <= status <= 599:
            raise ValueError("fault status must be an error status (400-599)")
        rate = asked.get("rate", 1.0 if "status" in asked else 0.0)
        changes: dict[str, Any] = {
            key: asked[key] for key in ("latency", "retry_after", "agent_delay") if key in asked
        }
        if "break_stream_after" in asked:
            changes["break_stream_after"] = int(asked["break_stream_after"])
        if "agent_error" in asked:
            changes["agent_error"] = bool(asked["agent_error"])
        if asked.get("lose_response"):
            changes["lose_response_status"] = status
        if self.roll(rate):
            changes["fail_status"] = status
        return dataclasses.replace(plan, **changes)


_HEADER_KEYS = {
    "latency",
    "status",
    "rate",
    "retry_after",
    "break_stream_after",
    "agent_delay",
    "agent_error",
    "lose_response",
}


def parse_header(header: str) -> dict[str, float]:
    """`latency=0.2,status=503` -> {"latency": 0.2, "status": 503.0}; ValueError if malformed."""
    values: dict[str, float] = {}
    for item in header.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _HEADER_KEYS:
            raise ValueError(f"unknown or malformed fault {item.strip()!r}")
        values[key] = float(raw)
        if values[key] < 0:
            raise ValueError(f"fault {key} must not be negative")
    return values


def plan_for(request: Request) -> FaultPlan:
    """The plan the fault middleware chose for this request (none outside the middleware)."""
    plan = request.scope.get("state", {}).get(PLAN_KEY)
    return plan if isinstance(plan, FaultPlan) else FaultPlan()
