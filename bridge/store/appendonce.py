"""Append to a list once per idempotency key (the web adapter's transcripts)."""

from __future__ import annotations

from bridge.store.client import RedisClient

# KEYS: list, written (hash idempotency key -> position), also (a key whose TTL follows the list).
# ARGV: idempotency key, entry, ttl seconds. -> 1-based position of the entry.
# Check and append in one step: two workers retrying one reply must not both append it.
APPEND_ONCE = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return tonumber(existing) end
local position = redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], position)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return position
"""


class AppendOnce:
    def __init__(self, redis: RedisClient) -> None:
        self._script = redis.register_script(APPEND_ONCE)

    async def __call__(
        self,
        log: str,
        written: str,
        also: str,
        *,
        idempotency_key: str,
        entry: str,
        ttl_seconds: int,
    ) -> int:
        """The caller wraps this in `storage(...)` with its own operation name."""
        args: list[str | int] = [idempotency_key, entry, ttl_seconds]
        return int(await self._script(keys=[log, written, also], args=args))
