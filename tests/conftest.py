"""Shared fixtures: a real redis-server per test session, a clean database per test.

Each area keeps its fixtures in its own plugin module, listed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bridge.redisconn import connect_redis
from tests.redis_server import RedisServer

pytest_plugins = [
    "tests.fixtures_emulator",
    "tests.fixtures_core",
    "tests.fixtures_slack",
    "tests.fixtures_discord",
    "tests.fixtures_desk",
    "tests.fixtures_helpdesk",
    "tests.fixtures_cluster",
]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    # The production pool (blocking, bounded): several in-process replicas share this client, and
    # a plain pool raises "Too many connections" under load where a real process would wait.
    client = connect_redis(redis_server.url, cluster=False)
    await client.flushall()
    yield client
    await client.aclose()
