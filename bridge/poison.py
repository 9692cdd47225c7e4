"""Poison threads: work taken over too often without finishing is dead-lettered, batch by batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bridge import keys
from bridge.codec import decode_message
from bridge.config import Settings
from bridge.deadletters import turn_id
from bridge.models import InboundMessage, ThreadKey
from bridge.threadmap import RedisClient
from bridge.turn import APOLOGY, TurnRunner, plan

log = logging.getLogger(__name__)


async def delivery_count(redis: RedisClient, entry_id: str) -> int:
    """How often the group handed the entry out (XPENDING's reply is alike on Redis 6.2 and 7)."""
    rows = await redis.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min=entry_id, max=entry_id, count=1
    )
    return int(rows[0]["times_delivered"]) if rows else 0


def head_batch(
    messages: Sequence[InboundMessage],
    journal: Sequence[str],
    status: str | None,
    settings: Settings,
) -> tuple[InboundMessage, ...]:
    """The messages the thread's next turn would take: `TurnRunner.run`'s rule (pure)."""
    if journal and [m.message_id for m in messages[: len(journal)]] == list(journal):
        messages = messages[: len(journal)]
    step = plan(messages, status, settings)
    if step.messages:
        return step.messages
    # A resolved thread is reopened first, taking nothing; the turn after takes the batch.
    return plan(messages, None, settings).messages


async def dead_letter_head(
    runner: TurnRunner,
    thread: ThreadKey,
    raw_inbox: Sequence[bytes | str],
    token: str,
    deliveries: int,
) -> None:
    """Dead-letter the head batch and commit it under the lease (fenced, like a finished turn)."""
    messages = [decode_message(raw) for raw in raw_inbox]
    record = await runner.threads.get(thread)
    journal = await runner.journal(thread)
    batch = head_batch(messages, journal, record.status if record else None, runner.settings)
    tid = turn_id(str(thread), [m.message_id for m in batch])
    log.error(
        "poison thread: its work was delivered %d times without finishing; "
        "%d message(s) dead-lettered",
        deliveries,
        len(batch),
        extra={"thread_key": str(thread), "turn_id": tid},
    )
    error = f"poison: delivered {deliveries} times without finishing"
    if await runner.dead_letters.store(tid, str(thread), batch, error):
        runner.metrics.dead_letters.labels(thread.platform).inc()
    await runner.commit(thread, token, len(batch), batch[-1].message_id, "")
    try:
        await runner.outbound.notice(thread, f"apology:{tid}", APOLOGY)
    except Exception as exc:  # the crash may well be in posting to this thread
        log.error("apology not posted: %s", type(exc).__name__, extra={"thread_key": str(thread)})
