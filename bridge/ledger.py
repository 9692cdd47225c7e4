"""A turn's ledger: what it writes about itself (journal, attempts, dead letters, commit)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.deadletters import DeadLetters, turn_id
from bridge.metrics import Metrics
from bridge.models import InboundMessage, ThreadKey
from bridge.store import Store

log = logging.getLogger(__name__)


@dataclass
class TurnLedger:
    """One lease holder's bookkeeping for one thread; every write is fenced by `token` or keyed
    by the batch, so a crash at any point leaves a state the next holder can finish."""

    store: Store
    dead_letters: DeadLetters
    metrics: Metrics
    thread: ThreadKey
    token: str
    record_ttl: int

    async def journal(self) -> list[str]:
        """Message ids of the batch an unfinished attempt was working on (empty if none)."""
        return await self.store.threads.journal(self.thread)

    async def note_attempt(self, batch: Sequence[InboundMessage], attempt: int) -> None:
        """Written before anything reaches Engage Smarter: a retry then reconciles first."""
        ids = [m.message_id for m in batch]
        await self.store.threads.write_journal(
            self.thread, turn_id(str(self.thread), ids), ids, attempt
        )

    async def count_attempt(self, head: InboundMessage) -> int:
        """Turns started on the batch beginning with `head`, this one included."""
        return await self.store.threads.count_attempt(self.thread, head.message_id)

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

    async def commit(self, count: int, last_message_id: str, mark: str = "") -> None:
        """Drop `count` messages from the inbox, note them in the record; LeaseLost if not ours."""
        await self.store.threads.commit(
            self.thread,
            self.token,
            count=count,
            last_message_id=last_message_id,
            mark=mark,
            now=datetime.now(UTC).isoformat(),
            record_ttl=self.record_ttl,
        )
