"""Thread records (thread key -> conversation) and their create claims, as Redis hashes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import ResponseError

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage
from bridge.store.scripts import Scripts


class Records:
    """Raw record hashes; `bridge.threadmap.ThreadMap` gives them their meaning."""

    def __init__(self, redis: RedisClient, scripts: Scripts, *, idle_ttl_seconds: int) -> None:
        self._redis = redis
        self._scripts = scripts
        self._ttl = idle_ttl_seconds

    async def get(self, thread: ThreadKey | str) -> dict[Any, Any]:
        async with storage("thread record"):
            return dict(await self._redis.hgetall(keys.record(thread)))

    async def status(self, thread: ThreadKey | str) -> str | None:
        async with storage("thread record"):
            return text(await self._redis.hget(keys.record(thread), "status")) or None

    async def put(
        self, thread: ThreadKey | str, fields: dict[str, str], *, unclaim: bool = False
    ) -> None:
        """Write the record (idle TTL refreshed); `unclaim` also drops the create claim, in the
        same transaction, once the conversation it guarded is recorded."""
        key = keys.record(thread)
        async with storage("thread record"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl)
            if unclaim:
                pipe.delete(keys.create_claim(thread))
            await pipe.execute()

    async def swap(self, thread: ThreadKey | str, expected: str, fields: dict[str, str]) -> bool:
        """Write `fields` only if the record still names conversation `expected`."""
        async with storage("thread record"):
            return await self._scripts.swap_conversation(thread, expected, fields, self._ttl)

    async def note_facts(self, thread: ThreadKey | str, facts: dict[str, str]) -> None:
        key = keys.facts(thread)
        async with storage("thread facts"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=facts)  # type: ignore[arg-type]
            pipe.expire(key, keys.FACTS_TTL_SECONDS)
            await pipe.execute()

    async def facts(self, thread: ThreadKey | str) -> dict[str, str]:
        async with storage("thread facts"):
            raw = await self._redis.hgetall(keys.facts(thread))
        return {text(k): text(v) for k, v in raw.items()}

    async def adopt_facts(self, old: keys.Namespace, part: str) -> int:
        """Facts an adapter kept under its own per-thread key (`old.thread(thread, part)`) before
        they were thread facts, each renamed to its thread's facts (same slot; its TTL goes with
        it) unless newer facts are there (then dropped). Safe in several processes at once; once
        a whole pass found none, later calls skip the scan. Returns how many moved."""
        done = old.shared(part, "adopted")
        tail = "}" + old.thread("", part)[2:]  # `{<thread>}:<name>:<part>`
        moved = found = 0
        async with storage("thread facts"):
            if await self._redis.exists(done):
                return 0
            async for raw in self._redis.scan_iter(match=old.thread("*", part), count=1000):
                key = text(raw)
                found += 1
                try:
                    if await self._redis.renamenx(key, keys.facts(key[1 : -len(tail)])):
                        moved += 1
                        continue
                except ResponseError:
                    continue  # no such key: another process moved it, or it expired
                await self._redis.delete(key)
            if not found:
                await self._redis.set(done, "1")
        return moved

    async def forget(self, thread: ThreadKey | str) -> bool:
        async with storage("thread record"):
            return bool(await self._redis.delete(keys.record(thread), keys.create_claim(thread)))

    async def claim_create(self, thread: ThreadKey | str) -> bool:
        """True if no create was in flight (or left half-done by a crash) for this thread."""
        claim = keys.create_claim(thread)
        token = secrets.token_hex(8)
        async with storage("create claim"):
            return bool(
                await self._redis.set(claim, token, nx=True, ex=keys.CREATE_CLAIM_TTL_SECONDS)
            )

    async def release_create(self, thread: ThreadKey | str) -> None:
        async with storage("create claim"):
            await self._redis.delete(keys.create_claim(thread))

    async def thread_keys(self) -> AsyncIterator[str]:
        async with storage("thread records"):
            async for key in self._redis.scan_iter(match=keys.RECORD_PATTERN, count=500):
                yield text(key)[1:].rsplit("}:conv", 1)[0]
