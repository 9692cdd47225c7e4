"""Per-visitor limits in Redis: fixed windows, shared by every bridge process."""

from __future__ import annotations

import time

from bridge.inbox import storage
from bridge.store import Namespace, RedisClient

_KEYS = Namespace("web")


def window_key(bucket: str, window_seconds: int, now: float) -> str:
    """One counter per bucket and window; it expires with its window."""
    return _KEYS.shared("rate", bucket, str(int(now // window_seconds)))


class RateLimiter:
    """Redis rather than an in-process bucket: the ingress tier runs several replicas behind one
    address, and a visitor's requests land on any of them; one INCR per request is cheap next to
    the turn each message starts."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def retry_after(self, bucket: str, limit: int, window_seconds: int) -> int:
        """0 if this request fits in the window, else the seconds until the window ends."""
        now = time.time()
        key = window_key(bucket, window_seconds, now)
        async with storage("web rate limit"), self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds + 1)
            count, _ = await pipe.execute()
        if int(count) <= limit:
            return 0
        return max(1, int(window_seconds - now % window_seconds))
