"""A thread's store state read, or another worker's lease taken, straight through the store's key
names: what tests look at or arrange. Production code goes through the phase scripts only."""

from __future__ import annotations

import json
from typing import Any

from bridge.models import ThreadKey
from bridge.store import keys


async def take_lease(redis: Any, thread: ThreadKey, token: str, ms: int) -> bool:
    """The lease as BEGIN takes it (SET NX PX), for a worker that holds the thread elsewhere."""
    return bool(await redis.set(keys.lease(thread), token, nx=True, px=ms))


async def pending(redis: Any, thread: ThreadKey) -> list[bytes | str]:
    """The thread's inbox, oldest first (serialized messages)."""
    return list(await redis.lrange(keys.inbox(thread), 0, -1))


async def journal(redis: Any, thread: ThreadKey) -> list[str]:
    """Message ids of the batch an unfinished attempt was working on (empty if none)."""
    raw = await redis.hget(keys.turn(thread), "ids")
    return list(json.loads(raw)) if raw else []
