"""Redis failures as the bridge's own errors, translated once at the store's boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from bridge.errors import BridgeError, StorageUnavailable


class LeaseLost(BridgeError):
    """Another worker owns the thread now; this one must stop without touching it."""


@asynccontextmanager
async def storage(operation: str) -> AsyncIterator[None]:
    """Translate Redis failures into StorageUnavailable, once, at the boundary."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StorageUnavailable(f"Redis unavailable during {operation}: {exc}") from exc
