"""Taking over a whole Redis whose other users are known dead (a restarted single `run`)."""

from __future__ import annotations

from bridge.codec import text
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage
from bridge.store.queue import Queue

_BATCH = 500


async def adopt_orphans(redis: RedisClient, queue: Queue, consumer: str) -> tuple[int, int]:
    """Every lease deleted, every unacknowledged ready entry moved to `consumer` (its first
    backlog read runs them) and the other consumers removed. Only for a Redis no other live
    process can be using: a straggler that reconnects finds its lease gone and is fenced out
    (BEGIN/COMMIT/extend check the token). Returns (leases dropped, entries adopted)."""
    dropped = 0
    async with storage("drop leases"):
        async for key in redis.scan_iter(match=keys.LEASE_PATTERN, count=1000):
            dropped += int(await redis.delete(key))
    await queue.ensure_group()
    adopted, cursor = 0, "0-0"
    while True:
        cursor, entries = await queue.claim_idle(consumer, cursor, 0, _BATCH)
        adopted += len(entries)
        if cursor == "0-0":
            break
    async with storage("drop consumers"):
        for info in await redis.xinfo_consumers(keys.READY_STREAM, keys.WORKER_GROUP):
            if (name := text(info["name"])) != consumer:
                await redis.xgroup_delconsumer(keys.READY_STREAM, keys.WORKER_GROUP, name)
    return dropped, adopted
