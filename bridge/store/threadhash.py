"""A small per-thread hash an adapter keeps for its own purposes, replaced whole and read whole."""

from __future__ import annotations

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store.client import RedisClient
from bridge.store.errors import storage
from bridge.store.keys import Namespace


class ThreadHash:
    """`{thread}:<name>:<part>` (the thread's slot); the owner says why its TTL is what it is."""

    def __init__(self, redis: RedisClient, name: str, part: str, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ns = Namespace(name)
        self._part = part
        self._ttl = ttl_seconds

    def _key(self, thread: ThreadKey) -> str:
        return self._ns.thread(thread, self._part)

    async def replace(self, thread: ThreadKey, fields: dict[str, str]) -> None:
        key = self._key(thread)
        async with storage(f"{self._part} write"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def get(self, thread: ThreadKey) -> dict[str, str]:
        async with storage(f"{self._part} read"):
            stored = await self._redis.hgetall(self._key(thread))
        return {text(k): text(v) for k, v in stored.items()}
