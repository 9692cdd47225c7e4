"""The Redis Cluster harness gives a real, working 3-node cluster that enforces slot rules."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, ResponseError

from tests.redis_cluster import RedisCluster, parse_cluster_info

_SWAP = """
local a = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], redis.call('GET', KEYS[2]))
redis.call('SET', KEYS[2], a)
return a
"""


def test_cluster_has_three_primaries_covering_every_slot(redis_cluster: RedisCluster) -> None:
    assert redis_cluster.is_ok()
    for port in redis_cluster.ports:
        info = redis_cluster.cluster_info(port)
        assert info["cluster_state"] == "ok"
        assert info["cluster_size"] == "3"


async def test_cluster_client_spreads_keys_over_all_nodes(
    redis_cluster: RedisCluster,
    redis_cluster_client: aioredis.RedisCluster,
) -> None:
    keys = [f"spread:{i}" for i in range(64)]
    for key in keys:
        await redis_cluster_client.set(key, key)
    owners = {getattr(redis_cluster_client.get_node_from_key(key), "port", None) for key in keys}
    assert owners == set(redis_cluster.ports)
    assert await redis_cluster_client.get("spread:7") == b"spread:7"


async def test_lua_script_on_two_keys_with_one_hash_tag_runs(
    redis_cluster_client: aioredis.RedisCluster,
) -> None:
    first, second = "{slack:T1:C1:1700.1}:a", "{slack:T1:C1:1700.1}:b"
    await redis_cluster_client.set(first, "1")
    await redis_cluster_client.set(second, "2")
    swap = redis_cluster_client.register_script(_SWAP)
    assert await swap(keys=[first, second]) == b"1"
    assert await redis_cluster_client.mget(first, second) == [b"2", b"1"]


async def test_lua_script_across_slots_is_refused_by_client_and_server(
    redis_cluster: RedisCluster, redis_cluster_client: aioredis.RedisCluster
) -> None:
    first, second = "{thread-a}:conv", "{thread-b}:conv"
    assert redis_cluster_client.keyslot(first) != redis_cluster_client.keyslot(second)
    with pytest.raises(RedisClusterException, match="same key slot"):
        await redis_cluster_client.eval(_SWAP, 2, first, second)
    # A plain connection to one node skips the client's check: the server itself refuses.
    node = aioredis.Redis(host="127.0.0.1", port=redis_cluster.ports[0])
    try:
        with pytest.raises(ResponseError, match="same slot"):
            await node.eval(_SWAP, 2, first, second)
    finally:
        await node.aclose()


def test_parse_cluster_info_reads_key_value_lines() -> None:
    raw = "cluster_state:ok\r\ncluster_slots_ok:16384\r\n# comment\r\n"
    assert parse_cluster_info(raw) == {"cluster_state": "ok", "cluster_slots_ok": "16384"}
