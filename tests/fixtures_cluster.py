"""Fixtures for tests that run against a real 3-node Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bridge.redisconn import connect_redis
from bridge.store.client import RedisClient
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster(nodes=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
async def redis_cluster_client(redis_cluster: RedisCluster) -> AsyncIterator[aioredis.RedisCluster]:
    client = aioredis.RedisCluster.from_url(redis_cluster.url, decode_responses=False)
    await client.flushall(target_nodes=aioredis.RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


@pytest.fixture(params=["single", "cluster"])
async def any_redis(request: pytest.FixtureRequest) -> AsyncIterator[RedisClient]:
    """An empty single Redis, then an empty 3-node Cluster, made as `engage-bridge run` makes
    its client (for store code that must behave the same on both)."""
    client: RedisClient
    if request.param == "single":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = connect_redis(server.url, cluster=False)
        await client.flushall()
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        client = connect_redis(cluster.url, cluster=True)
        assert isinstance(client, aioredis.RedisCluster)
        await client.flushall(target_nodes=aioredis.RedisCluster.PRIMARIES)
    yield client
    await client.aclose()
