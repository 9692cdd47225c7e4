"""What the maintenance commands and `check` open: Redis and Engage Smarter, no HTTP server.

Without an API key the emulator runs in this process (httpx's ASGI transport, no port) over the
data dir's emulator file, the one `run` and `chat` write: `threads`, `history` and the rest see
every thread whether or not a `run` is up.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from bridge.config import Settings
from bridge.core import Bridge
from bridge.embedded import EmbeddedRedis
from bridge.engage.client import EngageClient
from bridge.errors import ConfigError
from bridge.metrics import Metrics
from bridge.redisconn import connect_redis, ping, redis_limits
from bridge.runstate import emulator_file
from bridge.store import RedisClient

ORG_ID_MISSING = "set ENGAGE_SMARTER_ORG_ID (ENGAGE_SMARTER_API_KEY is set without it)"


async def open_redis(settings: Settings, stack: contextlib.AsyncExitStack) -> RedisClient:
    """The configured Redis, or the data dir's embedded one (reused if a `run` is up)."""
    if settings.redis_url:
        url = settings.redis_url
    elif settings.redis_cluster:
        raise ConfigError("ENGAGE_BRIDGE_REDIS_CLUSTER needs ENGAGE_BRIDGE_REDIS_URL")
    else:
        # Not tied to this short-lived process: a `run` may join the server meanwhile.
        embedded = EmbeddedRedis(settings.data_dir, die_with_parent=False)
        await embedded.start()
        stack.push_async_callback(embedded.stop)
        url = embedded.url
    redis = connect_redis(url, cluster=settings.redis_cluster, limits=redis_limits(settings))
    stack.push_async_callback(redis.aclose)
    await ping(redis)
    return redis


def open_engage(
    settings: Settings, stack: contextlib.AsyncExitStack, *, persisted: bool = True
) -> EngageClient:
    """The real API's client, or one talking to an in-process emulator (its file if `persisted`)."""
    if not settings.uses_emulator:
        if not settings.engage_org_id:
            raise ConfigError(
                "set ENGAGE_SMARTER_ORG_ID (ENGAGE_SMARTER_API_KEY is set without it)"
            )
        client = EngageClient.from_settings(settings)
    else:
        from bridge import emulator
        from bridge.emulator.store import SqliteStore

        store = None
        if persisted:
            store = SqliteStore(emulator_file(settings))
            stack.callback(store.close)
        app = emulator.create_app(emulator.EmulatorState(store=store))
        client = EngageClient.from_settings(
            settings,
            base_url="http://emulator",
            api_key=emulator.DEFAULT_API_KEY,
            org_id=emulator.DEFAULT_ORG_ID,
            transport=httpx.ASGITransport(app=app),
        )
    stack.push_async_callback(client.aclose)
    return client


@contextlib.asynccontextmanager
async def offline_bridge(settings: Settings) -> AsyncIterator[Bridge]:
    """The core's stores and Engage Smarter, without adapters, workers or HTTP server."""
    async with contextlib.AsyncExitStack() as stack:
        redis = await open_redis(settings, stack)
        engage = open_engage(settings, stack)
        yield Bridge(settings=settings, redis=redis, engage=engage, adapters={}, metrics=Metrics())
