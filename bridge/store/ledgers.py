"""The posted-replies ledger (outbound idempotency) and the dead letters."""

from __future__ import annotations

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage


class Posted:
    """Per thread: agent message id or notice id -> platform message id."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def get(self, thread: ThreadKey, key: str) -> str | None:
        async with storage("posted check"):
            found = await self._redis.hget(keys.posted(thread), key)
        return None if found is None else text(found)

    async def record(self, thread: ThreadKey, key: str, platform_id: str) -> None:
        posted = keys.posted(thread)
        async with storage("posted record"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(posted, key, platform_id)
            pipe.expire(posted, keys.POSTED_TTL_SECONDS)
            await pipe.execute()


class DeadLetterStore:
    """A global hash turn id -> JSON; adding the same turn twice keeps the first."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def add(self, turn_id: str, letter: str) -> bool:
        async with storage("dead letter"):
            return bool(await self._redis.hsetnx(keys.DEAD_LETTERS, turn_id, letter))

    async def get(self, turn_id: str) -> str | None:
        async with storage("dead letter"):
            raw = await self._redis.hget(keys.DEAD_LETTERS, turn_id)
        return None if raw is None else text(raw)

    async def all(self) -> list[str]:
        async with storage("dead letters"):
            raw = await self._redis.hgetall(keys.DEAD_LETTERS)
        return [text(v) for v in raw.values()]

    async def remove(self, turn_id: str) -> bool:
        async with storage("dead letters"):
            return bool(await self._redis.hdel(keys.DEAD_LETTERS, turn_id))
