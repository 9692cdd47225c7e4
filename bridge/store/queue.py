"""Durable per-thread inboxes and the `bridge:ready` scheduling stream."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from bridge.codec import encode_message, text
from bridge.models import InboundMessage, Standing, ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage
from bridge.store.scripts import Scripts
from bridge.store.start import StartScripts
from bridge.store.threads import Begun, begun_from

Entry = tuple[str, str]  # (stream entry id, thread key)
ALL_STANDINGS = frozenset(Standing)


def parse_entries(raw: Any) -> list[Entry]:
    """XREADGROUP / XAUTOCLAIM entries -> (id, thread key); deleted entries are skipped."""
    entries: list[Entry] = []
    for item in raw or ():
        entry_id, fields = item[0], item[1]
        if entry_id is None or not fields:
            continue
        thread = fields.get(b"thread", fields.get("thread"))
        entries.append((text(entry_id), text(thread)))
    return entries


def parse_autoclaim(reply: Any) -> tuple[str, list[Entry]]:
    """Redis 6.2 answers [cursor, entries], Redis 7 adds a third part (deleted ids)."""
    return text(reply[0]), parse_entries(reply[1])


@dataclass(frozen=True, slots=True)
class Accepted:
    """`accept_start`'s outcome. `entry_id`: a scheduling entry pending to the caller's consumer
    ('' none): with `begun`, the turn the accept started (its lease taken with the caller's
    token); without, the thread's schedule, to run as if the worker had read it."""

    standing: Standing
    stored: bool | None
    entry_id: str = ""
    begun: Begun | None = None


class Queue:
    """Enqueue (dedupe + push + schedule) on the ingress side; read, claim, ack for workers."""

    def __init__(self, redis: RedisClient, scripts: Scripts, start: StartScripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self._start = start

    async def is_known(self, thread: ThreadKey) -> bool:
        async with storage("is_known_thread"):
            return bool(await self._redis.exists(keys.record(thread), keys.inbox(thread)))

    async def accept(
        self, message: InboundMessage, taken: Collection[Standing] = ALL_STANDINGS
    ) -> tuple[Standing, bool | None]:
        """Read the thread's standing and, if it is one of `taken`, dedupe-claim, push and
        schedule the message: one atomic step (one round trip on a single Redis, two on a
        Cluster). -> (the standing, True stored | False duplicate | None not taken: nothing
        written)."""
        flags = _flags(taken)
        payload = encode_message(message)
        async with storage("enqueue"):
            standing, stored = await self._scripts.accept(
                message.thread, message.message_id, payload, flags
            )
            if stored >= 0 and not self._scripts.with_stream:
                # The stream lives in another slot: scheduled after the push, never before it.
                await self._redis.xadd(keys.READY_STREAM, {"thread": str(message.thread)})
        return Standing(standing), None if stored < 0 else bool(stored)

    async def accept_start(
        self,
        message: InboundMessage,
        taken: Collection[Standing],
        *,
        consumer: str,
        token: str,
        lease_ms: int,
    ) -> Accepted:
        """`accept`, and if the message is new and its thread idle (no lease holder, no entry
        waiting in the stream), take the lease (`token`) and start the turn for `consumer`:
        one round trip on a single Redis; on a Cluster the entry is taken first, in its own
        round trip (bridge/store/start.py), and the thread scheduled after the push if not."""
        flags = _flags(taken)
        thread = message.thread
        entry = ""
        async with storage("enqueue"):
            if not self._start.with_stream and Standing.UNKNOWN in taken:
                # Chatter taken only in a known thread (most of what is not taken) skips it.
                entry = await self._start.take_entry(thread, consumer)
            reply = await self._start.accept_start(
                thread,
                message.message_id,
                encode_message(message),
                flags,
                token=token,
                lease_ms=lease_ms,
                consumer=consumer,
                entry_id=entry,
            )
            if reply.stored < 0:
                if entry:
                    await self.ack(entry)
                return Accepted(Standing(reply.standing), None)
            if not self._start.with_stream and not reply.entry_id:
                await self._redis.xadd(keys.READY_STREAM, {"thread": str(thread)})
        begun = None if reply.opened is None else begun_from(reply.opened)
        return Accepted(Standing(reply.standing), bool(reply.stored), reply.entry_id, begun)

    async def enqueue(self, message: InboundMessage) -> bool:
        """Dedupe-claim, push and schedule whatever the thread's standing. True if stored.

        A duplicate is scheduled too: had a crash come between the push and the schedule, the
        platform's redelivery is what puts the stranded message back in front of a worker.
        """
        _, stored = await self.accept(message)
        return bool(stored)

    async def enqueue_together(self, thread: ThreadKey, messages: list[InboundMessage]) -> int:
        """Several messages of one thread in one step, then one schedule; how many were new."""
        batch = [(m.message_id, encode_message(m)) for m in messages]
        async with storage("enqueue"):
            stored = await self._scripts.enqueue_many(thread, batch)
            await self._redis.xadd(keys.READY_STREAM, {"thread": str(thread)})
        return stored

    async def schedule(self, thread: ThreadKey | str) -> None:
        async with storage("schedule"):
            await self._redis.xadd(keys.READY_STREAM, {"thread": str(thread)})

    async def depth(self) -> int:
        """Scheduling entries not yet processed (entries are deleted when done)."""
        async with storage("queue_depth"):
            return int(await self._redis.xlen(keys.READY_STREAM))

    async def last_id(self) -> str:
        """The id the ready stream gave its newest entry ("0-0" if none yet): entries added
        later have greater ids."""
        async with storage("stream info"):
            try:
                info: Any = await self._redis.xinfo_stream(keys.READY_STREAM)
            except ResponseError as exc:
                if "no such key" not in str(exc):
                    raise
                return "0-0"
        return text(info["last-generated-id"])

    async def ensure_group(self) -> None:
        async with storage("consumer group"):
            try:
                await self._redis.xgroup_create(
                    keys.READY_STREAM, keys.WORKER_GROUP, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, consumer: str, cursor: str, count: int, block_ms: int | None
    ) -> list[Entry]:
        """Own backlog (cursor "0"...) or new entries (">"); the group is made again if gone."""
        async with storage("read"):
            try:
                reply: Any = await self._redis.xreadgroup(
                    keys.WORKER_GROUP,
                    consumer,
                    {keys.READY_STREAM: cursor},
                    count=count,
                    block=block_ms,
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self.ensure_group()
                return []
        if isinstance(reply, dict):  # RESP3
            reply = list(reply.items())
        entries: list[Entry] = []
        for _stream, items in reply or ():
            entries.extend(parse_entries(items))
        return entries

    async def claim_idle(
        self, consumer: str, cursor: str, min_idle_ms: int, count: int
    ) -> tuple[str, list[Entry]]:
        """Entries idle longer than `min_idle_ms` (their worker presumed dead) move to us."""
        async with storage("claim"):
            reply = await self._redis.xautoclaim(
                keys.READY_STREAM,
                keys.WORKER_GROUP,
                consumer,
                min_idle_time=min_idle_ms,
                start_id=cursor,
                count=count,
            )
        return parse_autoclaim(reply)

    async def ack(self, entry_id: str) -> None:
        async with storage("ack"), self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(keys.READY_STREAM, keys.WORKER_GROUP, entry_id)
            pipe.xdel(keys.READY_STREAM, entry_id)
            await pipe.execute()


def _flags(taken: Collection[Standing]) -> str:
    """'1' or '0' per Standing, in order: whether the message is taken in it."""
    return "".join("1" if s in taken else "0" for s in Standing)
