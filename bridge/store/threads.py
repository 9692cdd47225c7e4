"""Per-thread state a turn works with: lease, pending messages, journal, attempts, commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import LeaseLost, storage
from bridge.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Begun:
    """What a lease holder needs to run the thread's next turn, read in the same step."""

    pending: list[bytes | str]
    record: dict[str, str]
    journal: list[str]
    attempt: int


def _begun(reply: Any) -> Begun:
    items, flat, journal, attempt = reply
    record = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
    ids = list(json.loads(journal)) if journal else []
    return Begun(list(items), record, ids, int(attempt))


class ThreadState:
    """Fenced by the lease token: a holder that lost its lease changes nothing."""

    def __init__(self, redis: RedisClient, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def begin(self, thread: ThreadKey, token: str, ms: int, *, acquire: bool) -> Begun | None:
        """Take (`acquire`) or keep the lease and read the next turn; None when there is no
        turn for us: another worker holds the thread (it looks again before it lets go), or
        nothing is pending and the lease was released. LeaseLost if a kept lease is gone."""
        async with storage("begin turn"):
            reply = await self._scripts.begin(thread, token, ms, acquire=acquire)
        if reply is None or reply == 0:
            return None
        if reply == -1:
            raise LeaseLost(str(thread))
        return _begun(reply)

    async def acquire(self, thread: ThreadKey, token: str, ms: int) -> bool:
        async with storage("lease"):
            return bool(await self._redis.set(keys.lease(thread), token, nx=True, px=ms))

    async def extend(self, thread: ThreadKey, token: str, ms: int) -> bool:
        async with storage("lease"):
            return await self._scripts.extend_lease(thread, token, ms)

    async def release(self, thread: ThreadKey, token: str) -> None:
        """Let go with work still pending; the caller schedules the thread again afterwards
        (not before: a worker that took the new entry while we held the lease would drop it)."""
        async with storage("release"):
            if not await self._scripts.release(thread, token):
                raise LeaseLost(str(thread))

    async def pending(self, thread: ThreadKey) -> list[bytes | str]:
        async with storage("inbox"):
            return list(await self._redis.lrange(keys.inbox(thread), 0, -1))

    async def journal(self, thread: ThreadKey) -> list[str]:
        """Message ids of the batch an unfinished attempt was working on (empty if none)."""
        async with storage("turn journal"):
            raw = await self._redis.hget(keys.turn(thread), "ids")
        return list(json.loads(raw)) if raw else []

    async def write_journal(
        self, thread: ThreadKey, turn_id: str, ids: Sequence[str], attempt: int
    ) -> None:
        key = keys.turn(thread)
        mapping = {"turn_id": turn_id, "ids": json.dumps(list(ids)), "attempt": attempt}
        async with storage("turn journal"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, keys.TURN_TTL_SECONDS)
            await pipe.execute()

    async def count_attempt(self, thread: ThreadKey, head_id: str) -> int:
        async with storage("turn attempts"):
            return await self._scripts.count_attempt(thread, head_id)

    async def commit(
        self,
        thread: ThreadKey,
        token: str,
        *,
        count: int,
        last_message_id: str,
        mark: str,
        now: str,
        record_ttl: int,
    ) -> bool:
        """Drop the batch from the inbox and note it in the record; LeaseLost if not ours.
        True if more is pending (the lease is kept); False once released (nothing pending)."""
        async with storage("commit"):
            done = await self._scripts.commit(
                thread, token, count, last_message_id, mark, now, record_ttl
            )
        if not done:
            raise LeaseLost(str(thread))
        return done == 1
