"""Connecting to Redis the way every command does: pool and timeouts fitted to the workers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bridge.config import Settings
from bridge.errors import StorageUnavailable
from bridge.redismux import MuxRedis
from bridge.store.claims import write_probe
from bridge.threadmap import RedisClient

_REDIS_PING_SECONDS = 2.0
_REDIS_SOCKET_TIMEOUT_SECONDS = 30.0
_REDIS_CONNECT_TIMEOUT_SECONDS = 5.0
# A burst waits this long for a free pooled connection before the caller sees StorageUnavailable.
_REDIS_POOL_WAIT_SECONDS = 10.0
# Connections beyond the workers' own: submits from listeners and webhooks, the workers'
# blocking read, readiness and metrics, web views.
_REDIS_POOL_HEADROOM = 64
_REDIS_POOL_CAP = 256
# Writers at once (a platform burst's submits) one client takes. On the pool, within its
# headroom above, which readiness, metrics and the workers' reads share (unbounded, a
# 300-envelope Socket Mode burst exhausted it and nothing was stored). Auto-pipelined
# (bridge.redismux), a submit's script takes no pool connection: 48 at a time was then most of a
# burst's ack time (500 at once: ack p99 1.2-1.4 s with 48, 0.36-0.40 s with 256; BENCHMARKS.md).
_POOLED_WRITERS = 48
_MUXED_WRITERS = 256


@dataclass(frozen=True, slots=True)
class RedisLimits:
    max_connections: int
    socket_timeout: float


def redis_limits(settings: Settings) -> RedisLimits:
    """Pool size and read timeout fitted to the workers (pure)."""
    # A turn holds a connection only for one command at a time and the pool makes a burst wait
    # for one: beyond a few hundred, more sockets only cost Redis memory and file descriptors.
    max_connections = min(2 * settings.worker_concurrency, _REDIS_POOL_CAP) + _REDIS_POOL_HEADROOM
    # Longer than a blocking stream read, so the socket never gives up on a healthy one.
    socket_timeout = max(_REDIS_SOCKET_TIMEOUT_SECONDS, settings.worker_block_seconds + 5.0)
    return RedisLimits(max_connections=max_connections, socket_timeout=socket_timeout)


def connect_redis(url: str, *, cluster: bool, limits: RedisLimits | None = None) -> RedisClient:
    """A client whose pool makes a burst wait for a connection instead of failing it; on a single
    Redis, concurrent simple commands are auto-pipelined on one connection (bridge.redismux).

    Explicit timeouts: redis-py 8 silently defaults reads to 5 s, which would cut the workers'
    blocking stream reads; `redis_limits` makes the read timeout outlast the block time the
    workers are given (`worker_block_seconds`).
    """
    limits = limits or RedisLimits(100, _REDIS_SOCKET_TIMEOUT_SECONDS)
    timeouts: dict[str, Any] = {
        "socket_timeout": limits.socket_timeout,
        "socket_connect_timeout": _REDIS_CONNECT_TIMEOUT_SECONDS,
    }
    if cluster:
        # redis-py's async cluster client has no blocking pool: each node's pool raises
        # MaxConnectionsError when full, so it gets the same size per node (one node may hold
        # every hot thread) and callers' storage errors cover the rest.
        return aioredis.RedisCluster.from_url(
            url, max_connections=limits.max_connections, **timeouts
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=limits.max_connections,
        timeout=_REDIS_POOL_WAIT_SECONDS,
        **timeouts,
    )
    # Commands that neither block nor change a connection's state share one auto-pipelined
    # connection (bridge.redismux); blocking reads and transactions use the pool.
    return MuxRedis.from_pool(pool)


def writers_at_once(redis: RedisClient) -> int:
    """How many submits may run at once on `redis` without exhausting its connection pool."""
    return _MUXED_WRITERS if isinstance(redis, MuxRedis) else _POOLED_WRITERS


async def ping(redis: RedisClient) -> None:
    """Raise StorageUnavailable unless Redis answers quickly."""
    try:
        async with asyncio.timeout(_REDIS_PING_SECONDS):
            await redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        raise StorageUnavailable(f"Redis did not answer: {exc or type(exc).__name__}") from exc


async def accepts_writes(redis: RedisClient) -> None:
    """Raise StorageUnavailable unless Redis quickly accepts a (tiny, expiring) write."""
    try:
        async with asyncio.timeout(_REDIS_PING_SECONDS):
            await write_probe(redis)
    except (RedisError, OSError, TimeoutError) as exc:
        raise StorageUnavailable(f"Redis refused a write: {type(exc).__name__}: {exc}") from exc


def redacted_url(url: str) -> str:
    """A Redis URL fit for printing: the password (if any) masked."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"
