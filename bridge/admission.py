"""Acks first: new turns yield to platform requests whose acks are late in this process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# New turns start at most this many at a time; the next batch only after the ingress was looked at
# again. A turn's start (BEGIN, the conversation, the chat request) costs ~2-3 ms of CPU, so a
# request arriving behind a batch waits ~0.1 s, not the seconds a burst's 500 turns would take.
BATCH = 32
# While acks are late a batch still starts this often, so they are never starved: 32 turns/s
# take ~20 % of a core, the acks keep the rest. With 0.25 s (128/s, above one process's
# capacity) the turns kept most of the CPU: 1,000 events at once acked at p99 2.8-5.1 s
# instead of 2.2-2.5 s. Acks are late only in a burst or an overload, so a saturated closed
# loop (600 threads / 200 concurrent) lost nothing to it (BENCHMARKS.md).
PERIOD_SECONDS = 1.0
# Acks late because the CPU is short come in crowds (a burst brings hundreds, a saturated
# closed loop of 200 users dozens); fewer late requests are slow for their own I/O before the
# ack (a file download, the `/engage ask` post) and holding turns back would not help them.
CROWD = 8


class Admission:
    """Acks first, once they are late: new turns yield to platform requests waiting for their ack.

    A platform waits for its ack (Slack gives up after 3 s and redelivers); an answer waits for
    the agent's seconds anyway. In one process both share the CPU: with 2,000 turn slots a
    burst's turns started while the same burst was still being acknowledged (1,000 events at
    once: ack p99 1.6-2.2 s with 32 slots, 7.5-11.8 s with 2,000; BENCHMARKS.md). A request in
    flight longer than `late_after` seconds is late; while one is, `allowed(free)` lets new
    turns start only `batch` every `period` (turns already running go on). Acks that are not
    late cost the turns nothing: holding turns back on any request in flight, or on a count of
    them, delayed every answer of a burst by the whole burst's acks and throttled a saturated
    process whose acks were never in danger. Fewer than `crowd` requests in flight are never
    late: they are slow for their own I/O, not for want of CPU. `late_after` 0: no gate. Accept
    signs do not wait: a sign within 100 ms is a promise too, and each costs the acks ~0.2 ms.
    """

    def __init__(
        self,
        late_after: float,
        batch: int = BATCH,
        period: float = PERIOD_SECONDS,
        crowd: int = CROWD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.late_after = late_after
        self.batch = max(1, batch)
        self.period = period
        self.crowd = max(1, crowd)
        self._clock = clock
        self._started: OrderedDict[int, float] = OrderedDict()  # oldest first
        self._ids = itertools.count()
        self._left = asyncio.Event()
        self.waiting = 0  # callers of `allowed` held back now

    @property
    def busy(self) -> int:
        """Ingress requests (and submits) in flight now."""
        return len(self._started)

    def late(self) -> bool:
        """Whether a request in flight has waited `late_after` seconds or more, with at least
        `crowd` requests in flight."""
        if self.late_after <= 0 or len(self._started) < self.crowd:
            return False
        return self._clock() - next(iter(self._started.values())) >= self.late_after

    def enter(self) -> int:
        key = next(self._ids)
        self._started[key] = self._clock()
        return key

    def leave(self, key: int) -> None:
        del self._started[key]
        self._left.set()

    @contextlib.contextmanager
    def ingress(self) -> Iterator[None]:
        """Around the handling of one platform request, until its ack is sent; inside an HTTP
        request `CountIngress` counts already (the same request would count twice)."""
        if _after_ack.get() is not None:
            yield
            return
        key = self.enter()
        try:
            yield
        finally:
            self.leave(key)

    async def allowed(self, free: int) -> int:
        """How many of `free` turn slots may take new work now; waits while acks are late."""
        if self.late_after <= 0:
            return free
        if not self.late():
            return min(free, self.batch)
        self.waiting += 1
        try:
            async with asyncio.timeout(self.period):
                while self.late():
                    self._left.clear()
                    await self._left.wait()
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1
        return min(free, self.batch)


Work = Callable[[], Coroutine[Any, Any, None]]
_spawned: set[asyncio.Task[None]] = set()


class _AfterAck:
    __slots__ = ("open", "work")

    def __init__(self) -> None:
        self.open = True
        self.work: list[Work] = []

    async def run(self) -> None:
        """Each in turn; if the request's task is cancelled meanwhile (the server's graceful
        shutdown gave up on it), what is left still runs, in tasks of its own: an accept sign
        whose future never resolved would keep its thread from showing a sign in this process
        again, and make its status wait the whole sign bound."""
        self.open = False
        for i, work in enumerate(self.work):
            try:
                await work()
            except asyncio.CancelledError:
                self._spawn(self.work[i + 1 :])
                raise
            except Exception:
                log.exception("work after an ack failed")

    def spawn(self) -> None:
        self.open = False
        self._spawn(self.work)

    @staticmethod
    def _spawn(works: list[Work]) -> None:
        for work in works:
            task = asyncio.create_task(work())
            _spawned.add(task)
            task.add_done_callback(_spawned_done)


def _spawned_done(task: asyncio.Task[None]) -> None:
    """As `run` logs a failure, at once (not when asyncio finds the task unretrieved)."""
    _spawned.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("work after an ack failed", exc_info=exc)


_after_ack: ContextVar[_AfterAck | None] = ContextVar("after_ack", default=None)


async def work_after_acks_done(seconds: float) -> None:
    """Wait up to `seconds` for the work after acks that left in tasks of its own (its
    request failed, or was cancelled by the server's shutdown): at shutdown, before the adapters
    it uses close."""
    if _spawned:
        await asyncio.wait(set(_spawned), timeout=seconds)


def after_ack(work: Work) -> bool:
    """Run `work` right after the ack of the HTTP ingress request being handled, in its task;
    False outside one (Socket Mode, a gateway, a worker): the caller starts a task itself.

    Under a saturated loop every new task waits a whole loop iteration (~20-40 ms at 600/200)
    before its first step; work started here leaves in the same step as the ack.
    """
    later = _after_ack.get()
    if later is None or not later.open:
        return False
    later.work.append(work)
    return True


class CountIngress:
    """ASGI middleware: an HTTP request counts as ingress work from its complete body to its end.

    Not before: a client trickling a body (up to the guard's read deadline) costs no CPU and
    must not hold new turns back. Requests whose body is never read (GETs) do not count, nor
    paths under `skip` (the mounted emulator, which this process's own turns call). Work the
    request left for after its ack (`after_ack`: accept signs) runs once the app has answered
    and the request no longer counts; if the app fails or is cancelled, in tasks of its own.
    """

    def __init__(self, app: ASGIApp, admission: Admission, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.admission = admission
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.skip and scope["path"].startswith(self.skip)):
            await self.app(scope, receive, send)
            return
        admission = self.admission
        key: int | None = None

        async def counting_receive() -> Message:
            nonlocal key
            message = await receive()
            if key is None and not message.get("more_body", False):
                key = admission.enter()
            return message

        later = _AfterAck()
        token = _after_ack.set(later)
        try:
            await self.app(scope, counting_receive, send)
        except BaseException:
            later.spawn()
            raise
        finally:
            _after_ack.reset(token)
            if key is not None:
                admission.leave(key)
        if later.work:
            await later.run()
