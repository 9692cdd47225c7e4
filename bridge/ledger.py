"""A turn's ledger: what it writes about itself (journal, attempts, dead letters, commit)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bridge.deadletters import DeadLetters, turn_id
from bridge.metrics import Metrics
from bridge.models import InboundMessage, ThreadKey
from bridge.store import Hold, Store
from bridge.store.threads import CreateClaim

log = logging.getLogger(__name__)


@dataclass
class TurnLedger:
    """One lease holder's bookkeeping for one thread; every write is fenced by the hold's token
    or keyed by the batch, so a crash at any point leaves a state the next holder can finish.
    `claim` is the create claim `begin` took (a turn that creates nothing lets it go)."""

    store: Store
    dead_letters: DeadLetters
    metrics: Metrics
    hold: Hold
    record_ttl: int
    claim: CreateClaim = field(default_factory=CreateClaim)

    @property
    def thread(self) -> ThreadKey:
        return self.hold.thread

    def turn_id(self, batch: Sequence[InboundMessage]) -> str:
        return turn_id(str(self.thread), [m.message_id for m in batch])

    async def parked(self, batch: Sequence[InboundMessage]) -> bool:
        """Whether an earlier attempt already made this batch a dead letter."""
        return await self.dead_letters.get(self.turn_id(batch)) is not None

    async def park(self, batch: Sequence[InboundMessage], error: str) -> str:
        """Keep the batch as a dead letter (once per batch); returns its turn id."""
        tid = self.turn_id(batch)
        if await self.dead_letters.store(tid, str(self.thread), tuple(batch), error):
            self.metrics.dead_letters.labels(self.thread.platform).inc()
        return tid

    async def commit(self, count: int, last_message_id: str, mark: str = "") -> bool:
        """Drop `count` messages from the inbox, note them in the record; LeaseLost if not ours.
        True if more is pending (lease kept), False once the lease was released."""
        return await self.store.threads.commit(
            self.hold,
            count=count,
            last_message_id=last_message_id,
            mark=mark,
            now=datetime.now(UTC).isoformat(),
            record_ttl=self.record_ttl,
            unclaim=self.claim.release_at_commit,
        )
