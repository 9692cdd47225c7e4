"""The web threads' transcripts and status lines in Redis, so any bridge process can serve them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import Namespace, RedisClient, storage
from bridge.store.appendonce import AppendOnce

_KEYS = Namespace("web")

STATUS_TTL_SECONDS = 120
"""A status line belongs to a turn in progress; if its worker dies, it must not stay forever."""


def transcript_key(thread: ThreadKey | str) -> str:
    """List of JSON entries, oldest first; idle TTL = settings.thread_idle_ttl_seconds."""
    return _KEYS.thread(thread, "log")


def written_key(thread: ThreadKey | str) -> str:
    """Hash idempotency key -> transcript position, so a retried send appends nothing."""
    return _KEYS.thread(thread, "written")


def owner_key(thread: ThreadKey | str) -> str:
    """The visitor id that started the thread; same idle TTL as the transcript."""
    return _KEYS.thread(thread, "owner")


def status_key(thread: ThreadKey | str) -> str:
    """The current status line (STATUS_TTL_SECONDS)."""
    return _KEYS.thread(thread, "status")


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
        self._append = AppendOnce(redis)

    async def append(self, thread: ThreadKey, idempotency_key: str, entry: Entry) -> int:
        """Append `entry` unless `idempotency_key` was appended before; its 1-based position."""
        stamped = entry if entry.at else Entry(**{**asdict(entry), "at": _now()})
        async with storage("web transcript append"):
            return await self._append(
                transcript_key(thread),
                written_key(thread),
                owner_key(thread),
                idempotency_key=idempotency_key,
                entry=json.dumps(asdict(stamped)),
                ttl_seconds=self._ttl,
            )

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
