"""The web threads' transcripts and status lines in Redis, so any bridge process can serve them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from bridge import keys
from bridge.codec import text
from bridge.inbox import storage
from bridge.models import ThreadKey

RedisClient = Redis | RedisCluster

STATUS_TTL_SECONDS = 120
"""A status line belongs to a turn in progress; if its worker dies, it must not stay forever."""


def transcript_key(thread: ThreadKey | str) -> str:
    """List of JSON entries, oldest first; idle TTL = settings.thread_idle_ttl_seconds."""
    return f"{keys.tag(thread)}:web:log"


def written_key(thread: ThreadKey | str) -> str:
    """Hash idempotency key -> transcript position, so a retried send appends nothing."""
    return f"{keys.tag(thread)}:web:written"


def owner_key(thread: ThreadKey | str) -> str:
    """The visitor id that started the thread; same idle TTL as the transcript."""
    return f"{keys.tag(thread)}:web:owner"


def status_key(thread: ThreadKey | str) -> str:
    """The current status line (STATUS_TTL_SECONDS)."""
    return f"{keys.tag(thread)}:web:status"


# KEYS: transcript, written, owner. ARGV: idempotency key, entry JSON, ttl. -> 1-based position.
# Check and append in one step: two workers retrying one reply must not both append it.
_APPEND_ONCE = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return tonumber(existing) end
local position = redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], position)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return position
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a web thread: role is user, staff, agent, notice or local."""

    role: str
    text: str
    name: str | None = None
    at: str = ""


class TranscriptStore:
    def __init__(self, redis: RedisClient, *, ttl_seconds: int) -> None:
        self.redis = redis
        self._redis = redis
        self._ttl = ttl_seconds
        self._append = redis.register_script(_APPEND_ONCE)

    async def append(self, thread: ThreadKey, idempotency_key: str, entry: Entry) -> int:
        """Append `entry` unless `idempotency_key` was appended before; its 1-based position."""
        stamped = entry if entry.at else Entry(**{**asdict(entry), "at": _now()})
        async with storage("web transcript append"):
            position = await self._append(
                keys=[transcript_key(thread), written_key(thread), owner_key(thread)],
                args=[idempotency_key, json.dumps(asdict(stamped)), self._ttl],
            )
        return int(position)

    async def read(self, thread: ThreadKey, after: int = 0) -> list[dict[str, Any]]:
        """Entries after position `after`, each with its `seq` (1-based position)."""
        async with storage("web transcript read"):
            raw = await self._redis.lrange(transcript_key(thread), after, -1)
        return [{"seq": after + i + 1, **json.loads(text(item))} for i, item in enumerate(raw)]

    async def claim(self, thread: ThreadKey, visitor: str) -> bool:
        """Make `visitor` the thread's owner; False if someone else already is."""
        async with storage("web thread owner"):
            await self._redis.set(owner_key(thread), visitor, ex=self._ttl, nx=True)
            return text(await self._redis.get(owner_key(thread))) == visitor

    async def owner(self, thread: ThreadKey) -> str | None:
        async with storage("web thread owner"):
            return text(await self._redis.get(owner_key(thread))) or None

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        async with storage("web status"):
            if status is None:
                await self._redis.delete(status_key(thread))
            else:
                await self._redis.set(status_key(thread), status, ex=STATUS_TTL_SECONDS)

    async def status(self, thread: ThreadKey) -> str | None:
        async with storage("web status"):
            return text(await self._redis.get(status_key(thread))) or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
