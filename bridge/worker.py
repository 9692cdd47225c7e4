"""Workers: take scheduled threads from the `bridge:ready` stream and run their turns.

One lease per thread keeps its turns in order; many threads run at once (asyncio tasks, up to
`worker_concurrency`); entries of a dead worker are taken over with XAUTOCLAIM once idle longer
than a lease, and a live holder's heartbeat keeps its entry from looking idle. Poison batches
(ones whose turn keeps dying with its worker) are counted and dead-lettered by `TurnRunner`:
counting entry deliveries instead would also count takeovers that never started a turn.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import secrets
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from bridge.admission import Admission
from bridge.backoff import delay
from bridge.eager import EagerStarts
from bridge.errors import StorageUnavailable
from bridge.metrics import Metrics
from bridge.models import ThreadKey
from bridge.store import Entry, Hold, LeaseLost, Store
from bridge.store.queue import Accepted, parse_autoclaim
from bridge.store.threads import Begun
from bridge.turn import TurnRunner

__all__ = ["Workers", "cancel_until_done", "parse_autoclaim", "raise_if_cancelled"]

log = logging.getLogger(__name__)


# Long enough for a cancelled turn's clean-up (clear the status, close the stream) to finish.
_RECANCEL_SECONDS = 1.0

# A crashed turn's thread is handed back after this backoff (jittered, doubling per attempt,
# at most a third of the lease it still holds): a crash loop does not spin, and
# `turn_max_attempts` still ends it.
_CRASH_BACKOFF_BASE = 0.5
_CRASH_BACKOFF_CAP = 5.0


# An accept starts its thread's turn only while at most this many platform requests (its own
# included) are in flight in this process (bridge.admission), see `Workers.reserve`. Without a
# bound, 600 threads / 200 concurrent lost 4-10 % of its turns/s and its first sign p50 rose
# (A/B, BENCHMARKS.md "ACCEPT starts the turn"); with 3 it held, and 200/50 kept the gain.
START_WHILE_IN_FLIGHT = 3

# At stop, entries that reached the stopping worker's last read go back in line in at most this
# many rounds of at most this many entries.
_STRAY_ROUNDS = 5
_STRAY_PAGE = 1000


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def raise_if_cancelled() -> None:
    """Honour a cancellation that a library swallowed, so workers always stop promptly.

    On Python 3.11 `asyncio.wait_for`, which redis-py uses to send every command when a socket
    timeout is set, returns normally when a cancel lands just as the send completes. The request
    stays counted on the task, so a loop that checks here stops instead of polling on forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_until_done(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel `tasks` again every so often until all end: one cancellation can be swallowed."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_SECONDS)


class Workers:
    """`concurrency` threads at once; `block_seconds` must stay below the Redis socket timeout
    (the runtime sizes that timeout from the same setting)."""

    def __init__(
        self,
        store: Store,
        runner: TurnRunner,
        metrics: Metrics,
        consumer: str,
        *,
        concurrency: int,
        lease_seconds: float,
        claim_idle_seconds: float,
        block_seconds: float,
        admission: Admission | None = None,
    ) -> None:
        self._store = store
        self._runner = runner
        self._metrics = metrics
        self.consumer = consumer
        self._concurrency = concurrency
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._lease_ms = max(100, int(lease_seconds * 1000))
        self._claim_idle_ms = max(self._lease_ms + 100, int(claim_idle_seconds * 1000))
        self._block_ms = max(1, int(block_seconds * 1000))
        self._retry_pause = min(1.0, lease_seconds / 2)
        self._admission = admission
        self._starts = EagerStarts()
        self._reserved = 0  # slots held for accepts that may start a turn (`reserve`)
        self._running = False  # `run` is on: only then may an accept start a turn here
        self._context = contextvars.copy_context()  # `run`'s, for the turns accepts start
        self._unreserved = asyncio.Event()
        # Entries of turns an accept started here, until acknowledged: at stop, the strays
        # newer than the stream's mark are rescheduled, but never these (their lease is ours).
        self._held: set[str] = set()
        self._starts_unknown = False

    @property
    def lease_ms(self) -> int:
        return self._lease_ms

    def reserve(self) -> bool:
        """A turn slot for an accept that may start its thread's turn here (`take`); False
        when none is free, other requests crowd in or the workers do not run. Release
        it with `take` or `unreserve`."""
        if not self._running or len(self._in_flight) + self._reserved >= self._concurrency:
            return False
        admission = self._admission
        if admission is not None and admission.busy > START_WHILE_IN_FLIGHT:
            # Requests share the CPU: the turn waits for the worker's read, which starts turns
            # in batches behind the acks (and `allowed` once they are late); started from its
            # accept, it put the begin's work and its first step ahead of the acks and signs.
            return False
        self._reserved += 1
        return True

    def unreserve(self) -> None:
        """An accept on a reserved slot failed or was cancelled: its script may have run, so a
        turn may have started here whose entry only the claim may take over (never the strays
        at stop: they would schedule its thread again while its lease is still ours)."""
        self._reserved -= 1
        self._unreserved.set()
        self._starts_unknown = True

    def _free(self) -> int:
        """Slots for entries read now. A blocking read may still return up to this many after
        accepts took some of them meanwhile: in a burst the process runs that many more."""
        return self._concurrency - len(self._in_flight) - self._reserved

    async def _slot_freed(self) -> None:
        """Until a turn ends or an accept gives back its reserved slot."""
        self._unreserved.clear()
        freed = asyncio.ensure_future(self._unreserved.wait())
        try:
            await asyncio.wait(
                {freed, *self._in_flight.values()}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            freed.cancel()

    def take(self, accepted: Accepted, token: str, thread: ThreadKey) -> None:
        """Run what a reserved accept left pending to this consumer: the turn it started
        (its lease taken with `token`), or the thread's schedule, as if read from the stream."""
        self._reserved -= 1
        self._unreserved.set()
        entry_id, begun = accepted.entry_id, accepted.begun
        if not entry_id:
            return
        # The task is made a loop iteration later, so its first step runs after the accept's
        # caller acknowledged the platform and its sign's first step (the sign's task is made
        # after this returns); eagerly, both waited for the turn's first step.
        # In the workers' own context, not the request's (its after-ack work is not the turn's).
        later = functools.partial(asyncio.get_running_loop().call_soon, context=self._context)
        if begun is None:
            if self._running:  # else left to the strays at stop, or to the claim
                later(self._track, entry_id, self._handle((entry_id, str(thread))), False)
            return
        self._held.add(entry_id)
        hold = Hold(thread, token, entry_id, attempt=begun.attempt)
        if self._running:
            later(self._track, entry_id, self._serve(hold, begun), False)
        else:  # too late to run here: let go at once (the entry stays ours if that fails)
            later(self._track, entry_id, self._give_back(hold), False)

    async def ensure_group(self) -> None:
        await self._store.queue.ensure_group()

    async def run(self) -> None:
        """Until cancelled. Redis outages are waited out; unfinished turns are taken over."""
        backlog_cursor: str | None = "0"
        claim_cursor = "0-0"
        next_claim = 0.0
        block_ms = self._block_ms
        group_ready = False
        self._running = True
        self._context = contextvars.copy_context()
        try:
            while True:
                raise_if_cancelled()
                try:
                    if not group_ready:
                        await self.ensure_group()
                        group_ready = True
                    free = self._free()
                    if free <= 0:
                        await self._slot_freed()
                        continue
                    if self._admission is not None:
                        # Acks first: new work waits while this process answers platforms.
                        free = await self._admission.allowed(free)
                    # Claims wait for the own backlog, so a just-claimed entry is not read twice.
                    if backlog_cursor is None and time.monotonic() >= next_claim:
                        claim_cursor = await self._claim(claim_cursor, free)
                        next_claim = time.monotonic() + self._claim_idle_ms / 2000
                        free = min(free, self._free())
                        if free <= 0:
                            continue
                    if backlog_cursor is not None:
                        entries = await self._read(backlog_cursor, free, None)
                        backlog_cursor = entries[-1][0] if entries else None
                    else:
                        wait = min(block_ms, max(1, int((next_claim - time.monotonic()) * 1000)))
                        entries = await self._read(">", free, wait)
                    for entry in entries:
                        self._spawn(entry, recovered=False)
                    self._starts.run()
                except StorageUnavailable as exc:
                    log.warning("worker loop: %s; retrying", exc)
                    await asyncio.sleep(self._retry_pause)
        finally:
            self._running = False  # no accept starts a turn here from now on
            mark: str | None = None
            try:
                mark = await self._stream_mark()  # before the stopped turns hand back
            finally:
                await cancel_until_done(self._in_flight.values())
            if mark is not None:
                await self._reschedule_strays(mark)

    async def _stream_mark(self) -> str | None:
        try:
            return await self._store.queue.last_id()
        except StorageUnavailable:
            return None

    async def _reschedule_strays(self, mark: str) -> None:
        """At stop: entries newer than `mark` that reached this worker anyway go back in line.

        The loop's last blocking read, cancelled here, waits on in Redis until Redis sees its
        connection close: entries added meanwhile (the hand-backs of the turns stopped here,
        other processes' new messages) are delivered to it, and would wait for the claim
        (60 s). None of them was run here (they are newer than anything this worker read), so
        their threads are scheduled again and the entries dropped; a few rounds, as the
        schedules can reach that read too until Redis has let it go."""
        if self._starts_unknown:
            return  # an accept that may have started a turn here failed: left to the claim
        newer = _stream_id(mark)
        try:
            for _ in range(_STRAY_ROUNDS):
                mine = await self._read("0", _STRAY_PAGE, None)
                strays = [e for e in mine if _stream_id(e[0]) > newer and e[0] not in self._held]
                if not strays:
                    return
                for entry_id, thread in strays:
                    await self._store.queue.schedule(thread)  # before the ack: none is lost
                    await self._ack(entry_id)
        except StorageUnavailable as exc:
            log.warning("entries that reached a stopping worker left to the claim: %s", exc)

    async def _read(self, cursor: str, count: int, block_ms: int | None) -> list[Entry]:
        return await self._store.queue.read(self.consumer, cursor, count, block_ms)

    async def _claim(self, cursor: str, count: int) -> str:
        next_cursor, entries = await self._store.queue.claim_idle(
            self.consumer, cursor, self._claim_idle_ms, count
        )
        for entry in entries:
            self._spawn(entry, recovered=True)
        self._starts.run()
        return next_cursor

    def _spawn(self, entry: Entry, *, recovered: bool) -> None:
        entry_id = entry[0]
        if entry_id in self._in_flight:
            return
        if recovered:
            self._metrics.threads_recovered.inc()
            log.info("taking over a stalled thread", extra={"thread_key": entry[1]})
        self._track(entry_id, self._handle(entry))

    def _track(self, entry_id: str, work: Coroutine[Any, Any, None], eager: bool = True) -> None:
        loop = asyncio.get_running_loop()
        # Started eagerly (`run` after the spawns): the turn sends its BEGIN in this step instead
        # of a loop iteration later, behind all other ready work.
        task = self._starts.create_task(loop, work) if eager else loop.create_task(work)
        self._in_flight[entry_id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(entry_id, None))

    async def _handle(self, entry: Entry) -> None:
        entry_id, thread_key = entry
        try:
            thread = ThreadKey.parse(thread_key)
        except ValueError:
            log.error("unreadable scheduling entry dropped: %r", thread_key)
            await self._ack(entry_id)
            return
        await self._serve(Hold(thread, secrets.token_hex(16), entry_id))

    async def _serve(self, hold: Hold, begun: Begun | None = None) -> None:
        """Run the hold's turns (`begun`: the first one, opened by its accept) and acknowledge
        its entry; a crashed turn's thread is handed back, a stopped one's too."""
        thread_key = str(hold.thread)
        try:
            await self._hold(hold, begun)
            if not hold.acked:
                await self._ack_hold(hold)
        except (LeaseLost, StorageUnavailable) as exc:
            # Not acknowledged: the entry goes idle and is taken over once the lease is gone.
            log.warning(
                "thread left for another worker: %s: %s",
                type(exc).__name__,
                exc,
                extra={"thread_key": thread_key},
            )
        except asyncio.CancelledError:
            await self._hand_back_stopped(hold)
            raise
        except Exception:
            log.exception(
                "turn crashed; the thread will be retried", extra={"thread_key": thread_key}
            )
            await self._hand_back_crashed(hold)
        finally:
            if hold.acked:
                self._held.discard(hold.entry_id)

    async def _give_back(self, hold: Hold) -> None:
        try:
            await self._hand_back(hold, "stopped", logging.INFO)
        finally:
            if hold.acked:
                self._held.discard(hold.entry_id)

    async def _hand_back_stopped(self, hold: Hold) -> None:
        """The workers stop (the process shuts down) mid-turn: hand the thread back, so another
        process, or this one restarted, takes it at once instead of after the lease and the
        claim (30 + 60 s). The next BEGIN counts the attempt, as after a crash."""
        if hold.attempt == 0 or hold.released:
            return  # no lease taken, or already let go
        await self._hand_back(hold, "stopped", logging.INFO)

    async def _hand_back_crashed(self, hold: Hold) -> None:
        """Retry a crashed turn soon instead of when its lease runs out: after a short backoff
        (the lease, still held, keeps other workers off), hand the thread back; the next BEGIN
        counts the attempt as before. A process that dies leaves its lease to run out."""
        if hold.released:
            return
        cap = min(_CRASH_BACKOFF_CAP, self._lease_ms / 3000)
        await asyncio.sleep(
            delay(max(1, hold.attempt), base=min(_CRASH_BACKOFF_BASE, cap), cap=cap)
        )
        await self._hand_back(hold, "crashed", logging.WARNING)

    async def _hand_back(self, hold: Hold, turn: str, level: int) -> None:
        """Release the lease and put the thread back in line (its entry acked); when that
        fails, the lease runs out instead."""
        try:
            await self._store.threads.hand_back(hold)
            if not hold.acked:
                await self._ack_hold(hold)
        except (LeaseLost, StorageUnavailable) as exc:
            log.log(
                level,
                "%s turn not handed back: %s (its lease runs out instead)",
                turn,
                type(exc).__name__,
                extra={"thread_key": str(hold.thread)},
            )

    async def _hold(self, hold: Hold, begun: Begun | None = None) -> None:
        """Run the thread's turns while holding its lease (taken here, or by the accept that
        opened `begun`); returns when the entry is done (acked already if a script did it:
        `hold.acked`)."""
        threads = self._store.threads
        if begun is None:
            begun = await threads.begin(hold, self._lease_ms, acquire=True)
        if begun is None:
            return  # nothing pending, or the holder looks at the inbox before it lets go
        holder = asyncio.current_task()
        assert holder is not None
        # The first heartbeat is due a third of a lease from now; most turns end before it, so
        # its task starts only then (a timer per hold instead of a task, its steps and its sleep).
        heartbeat: asyncio.Task[None] | None = None

        def start_heartbeat() -> None:
            nonlocal heartbeat
            heartbeat = asyncio.create_task(self._heartbeat(hold, holder))

        due = asyncio.get_running_loop().call_later(self._lease_ms / 3000, start_heartbeat)
        try:
            while begun is not None:
                raise_if_cancelled()
                if not await self._runner.run(hold, begun):
                    return  # committed with nothing pending: the commit let go
                if len(self._in_flight) >= self._concurrency:
                    # Other threads wait for a slot: this one goes back in line behind them.
                    await threads.hand_back(hold)
                    return
                begun = await threads.begin(hold, self._lease_ms, acquire=False)
        except asyncio.CancelledError:
            stopped = heartbeat is not None and heartbeat.done() and not heartbeat.cancelled()
            if stopped and holder.uncancel() == 0:
                raise LeaseLost(str(hold.thread)) from None  # only the heartbeat stopped us
            raise
        finally:
            due.cancel()
            if heartbeat is not None:
                heartbeat.cancel()

    async def _heartbeat(self, hold: Hold, holder: asyncio.Task[None]) -> None:
        """Started when the first heartbeat is due; then every third of a lease."""
        interval = self._lease_ms / 3000
        thread = hold.thread
        while True:
            raise_if_cancelled()
            started = time.monotonic()
            try:
                alive = await self._store.threads.heartbeat(hold, self._lease_ms, self.consumer)
            except StorageUnavailable as exc:
                log.warning("heartbeat failed: %s", exc, extra={"thread_key": str(thread)})
                await asyncio.sleep(interval)
                continue
            took = time.monotonic() - started
            if took > interval:
                # Late heartbeats let the lease lapse and the thread be taken over mid-turn.
                log.warning(
                    "heartbeat took %.1f s (lease %.1f s)",
                    took,
                    self._lease_ms / 1000,
                    extra={"thread_key": str(thread)},
                )
            if not alive:
                if hold.released:
                    return  # this hold's own commit (begin, hand-back) let go before the beat ran
                if not hold.letting_go:  # else such a step is in flight: its reply tells the holder
                    # Another worker may own the thread now: stop this turn before it posts
                    # anything more (its commit would fail anyway; the new holder redoes the batch).
                    log.warning(
                        "lease lost mid-turn; turn stopped", extra={"thread_key": str(thread)}
                    )
                    holder.cancel()
                    return
            await asyncio.sleep(interval)

    async def _ack(self, entry_id: str) -> None:
        await self._store.queue.ack(entry_id)

    async def _ack_hold(self, hold: Hold) -> None:
        await self._ack(hold.entry_id)
        hold.acked = True
