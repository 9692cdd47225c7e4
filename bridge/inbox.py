"""The hand-off: participation policy, then a durable, deduplicated enqueue through the store."""

from __future__ import annotations

import logging
import secrets
from typing import Protocol

from bridge.config import Policy, Staff
from bridge.metrics import Metrics
from bridge.models import InboundMessage, Standing, SubmitResult, ThreadKey
from bridge.policy import Action, decide_each
from bridge.store import Store, storage
from bridge.store.queue import Accepted

__all__ = ["InboxQueue", "TurnStarts", "storage"]

log = logging.getLogger(__name__)


class TurnStarts(Protocol):
    """This process's workers (bridge.worker.Workers), to which an accept may hand the turn it
    started: `reserve` a slot first, then `take` what the accept left (or `unreserve`)."""

    consumer: str

    @property
    def lease_ms(self) -> int: ...

    def reserve(self) -> bool: ...

    def unreserve(self) -> None: ...

    def take(self, accepted: Accepted, token: str, thread: ThreadKey) -> None: ...


class InboxQueue:
    """`submit` returns only once the message is in Redis (or was a duplicate, or ignored).
    With `starts` (this process runs workers), an accept for an idle thread takes its lease
    and starts its turn here: no wake-up, no BEGIN (bridge/store/start.py)."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        policy: Policy,
        staff: Staff,
        starts: TurnStarts | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._policy = policy
        self._staff = staff
        self.starts = starts

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        """A conversation exists, or accepted messages wait for their first turn (which creates
        it): a follow-up sent before the first message was answered belongs to the thread too."""
        return await self._store.queue.is_known(thread)

    async def submit(self, message: InboundMessage) -> SubmitResult:
        result, _ = await self.accept(message)
        return result

    async def accept(self, message: InboundMessage) -> tuple[SubmitResult, bool]:
        """`submit`, and whether the message was stored for an agent answer (not a command, not
        a record for a human): the thread can be shown a sign at once."""
        decisions = decide_each(message, self._policy, self._staff)
        taken = decisions.accepted()
        if taken and self.starts is not None and self.starts.reserve():
            standing, stored = await self._accept_start(message, taken, self.starts)
        elif taken or len(set(decisions.by_standing)) > 1:
            standing, stored = await self._store.queue.accept(message, taken)
        else:  # ignored whatever the thread's standing: nothing to read
            standing, stored = Standing.UNKNOWN, None
        decision = decisions[standing]
        log.debug(
            "policy %s: %s",
            decision.action.value,
            decision.reason,
            extra={"thread_key": str(message.thread), "message_id": message.message_id},
        )
        if stored is None:
            self._metrics.messages_in.labels(message.platform, "ignored").inc()
            return SubmitResult(False, decision.reason, {"outcome": "ignored"}), False
        outcome = "accepted" if stored else "duplicate"
        self._metrics.messages_in.labels(message.platform, outcome).inc()
        if not stored:
            self._metrics.duplicates_dropped.labels(message.platform).inc()
            log.info(
                "duplicate delivery dropped",
                extra={"thread_key": str(message.thread), "message_id": message.message_id},
            )
            return SubmitResult(False, "duplicate delivery", {"outcome": "duplicate"}), False
        answer = decision.action is Action.ANSWER and not decisions.command
        return SubmitResult(True, decision.reason, {"outcome": "accepted"}), answer

    async def _accept_start(
        self, message: InboundMessage, taken: frozenset[Standing], starts: TurnStarts
    ) -> tuple[Standing, bool | None]:
        """The accept, on a slot `starts` reserved: the turn it starts, or the schedule it left
        pending to this process, runs here."""
        token = secrets.token_hex(16)
        try:
            accepted = await self._store.queue.accept_start(
                message, taken, consumer=starts.consumer, token=token, lease_ms=starts.lease_ms
            )
        except BaseException:
            starts.unreserve()
            raise
        starts.take(accepted, token, message.thread)
        return accepted.standing, accepted.stored

    async def enqueue(self, message: InboundMessage) -> bool:
        """Store and schedule without the policy (replays); True if stored, False duplicate."""
        return await self._store.queue.enqueue(message)

    async def depth(self) -> int:
        """Scheduling entries not yet processed (entries are deleted when done)."""
        depth = await self._store.queue.depth()
        self._metrics.queue_depth.set(depth)
        return depth
