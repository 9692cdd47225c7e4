"""Auto-pipelined commands on a real redis-server: own replies, own errors, failures for all."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import inspect
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.errors import StorageUnavailable
from bridge.redisconn import RedisLimits, connect_redis
from bridge.redismux import MuxRedis
from bridge.store.errors import storage
from tests.fixtures_core import wait_until
from tests.redis_server import RedisServer

ECHO = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    if server.process is not None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.close()


@pytest.fixture
async def fragile(own_redis: RedisServer) -> AsyncIterator[MuxRedis]:
    """A client of a server the test may stop or kill (the runtime's 30 s socket timeout)."""
    client = connect_redis(own_redis.url, cluster=False)
    assert isinstance(client, MuxRedis)
    yield client
    await client.aclose()


@pytest.fixture
async def impatient(own_redis: RedisServer) -> AsyncIterator[MuxRedis]:
    """A client whose reads give up after 0.5 s."""
    client = connect_redis(own_redis.url, cluster=False, limits=RedisLimits(16, 0.5))
    assert isinstance(client, MuxRedis)
    yield client
    await client.aclose()


def waiting(client: MuxRedis) -> int:
    wire = client._wire
    return 0 if wire is None else len(wire.waiting)


def named(url: str) -> MuxRedis:
    """A client whose connections carry a name of their own (other tests' clients may linger)."""
    client = connect_redis(f"{url}?client_name=mux-{uuid.uuid4().hex}", cluster=False)
    assert isinstance(client, MuxRedis)
    return client


async def own_connections(client: aioredis.Redis) -> int:
    """Connections of this client, the pooled one that asks included."""
    name = client.connection_pool.connection_kwargs["client_name"]
    return sum(c["name"] == name for c in await client.client_list())


async def test_concurrent_commands_share_one_connection_and_each_gets_its_own_reply(
    redis_server: RedisServer,
) -> None:
    client = named(redis_server.url)
    script = client.register_script(ECHO)

    async def turn(n: int) -> tuple[Any, ...]:
        echoed = await script(keys=[f"k{n}"], args=[n])
        await client.hset(f"h{n}", mapping={"n": n})
        return (echoed, await client.hget(f"h{n}", "n"))

    try:
        results = await asyncio.gather(*(turn(n) for n in range(300)))
        expected = [([f"k{n}".encode(), str(n).encode()], str(n).encode()) for n in range(300)]
        assert results == expected
        # 300 callers at once: one auto-pipelined connection, plus the pooled one CLIENT LIST uses.
        assert await own_connections(client) == 2
    finally:
        await client.aclose()


async def test_replies_are_parsed_as_redis_py_parses_them(
    redis_server: RedisServer, redis_client: MuxRedis
) -> None:
    plain = aioredis.Redis.from_url(redis_server.url)
    try:

        async def calls(client: aioredis.Redis) -> list[Any]:
            await plain.delete("s", "h", "x", "n")
            return [
                await client.set("s", "v"),
                await client.set("s", "w", nx=True),
                await client.get("s"),
                await client.hset("h", mapping={"a": "1", "b": "2"}),
                await client.hgetall("h"),
                await client.hmget("h", ["a", "zz"]),
                await client.exists("s", "h", "nope"),
                await client.expire("s", 60),
                await client.incr("n"),
                await client.ping(),
                await client.mget(["s", "nope"]),
                await client.xlen("x"),
                await client.delete("s"),
            ]

        assert await calls(redis_client) == await calls(plain)
    finally:
        await plain.aclose()


async def test_an_error_reply_fails_only_its_own_command(redis_client: MuxRedis) -> None:
    await redis_client.set("text", "v")
    results = await asyncio.gather(
        redis_client.incr("counter"),
        redis_client.hget("text", "field"),  # WRONGTYPE
        redis_client.get("text"),
        redis_client.incr("counter"),
        return_exceptions=True,
    )
    assert [results[0], results[2], results[3]] == [1, b"v", 2]
    assert isinstance(results[1], ResponseError)
    assert "WRONGTYPE" in str(results[1])


async def test_scripts_load_themselves_again_after_a_script_flush(redis_client: MuxRedis) -> None:
    script = redis_client.register_script(ECHO)
    assert await script(keys=["a"], args=["1"]) == [b"a", b"1"]
    await redis_client.script_flush()
    # Every caller of the flushed script meets NOSCRIPT in the same batch and reloads it.
    echoed = await asyncio.gather(*(script(keys=[f"k{n}"], args=[n]) for n in range(20)))
    assert echoed == [[f"k{n}".encode(), str(n).encode()] for n in range(20)]


async def script_loads(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_script", {}).get("calls", 0))


async def test_a_script_is_loaded_before_its_first_calls_not_by_each_of_them(
    own_redis: RedisServer, fragile: MuxRedis
) -> None:
    before = fragile.register_script(ECHO)  # not connected yet: loaded when the connection is
    await fragile.ping()
    after = fragile.register_script(ECHO + " -- registered once connected")
    again = fragile.register_script(ECHO)  # the same script: not loaded twice
    # A burst of first calls on a Redis that never saw the scripts: none meets NOSCRIPT (each
    # would load its script: 40 loads, three round trips per call).
    echoed = await asyncio.gather(
        *(s(keys=[f"k{n}"], args=[n]) for n in range(20) for s in (before, after, again))
    )
    assert echoed == [[f"k{n}".encode(), str(n).encode()] for n in range(20) for _ in range(3)]
    assert await script_loads(fragile) == 2


async def test_a_new_connection_loads_the_scripts_again_before_their_calls(
    own_redis: RedisServer, fragile: MuxRedis
) -> None:
    script = fragile.register_script(ECHO)
    assert await script(keys=["a"], args=["1"]) == [b"a", b"1"]
    assert own_redis.process is not None
    own_redis.process.kill()  # a restarted Redis knows no script
    with pytest.raises(RedisConnectionError):
        await fragile.ping()
    own_redis.stop()
    own_redis.start()
    echoed = await asyncio.gather(*(script(keys=[f"k{n}"], args=[n]) for n in range(20)))
    assert echoed == [[f"k{n}".encode(), str(n).encode()] for n in range(20)]
    assert await script_loads(fragile) == 1


async def test_a_cancelled_caller_leaves_the_replies_of_the_others_in_order(
    own_redis: RedisServer, fragile: MuxRedis
) -> None:
    await fragile.set("a", "A")
    await fragile.set("b", "B")
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    first = asyncio.create_task(fragile.get("a"))
    second = asyncio.create_task(fragile.get("b"))
    await wait_until(lambda: waiting(fragile) == 2)
    first.cancel()
    os.kill(own_redis.process.pid, signal.SIGCONT)
    assert await second == b"B"
    assert first.cancelled()
    assert await fragile.get("a") == b"A"


async def test_a_hung_redis_fails_every_waiting_command_within_the_socket_timeout(
    own_redis: RedisServer, impatient: MuxRedis
) -> None:
    fragile = impatient
    await fragile.set("k", "v")
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)

    async def read() -> Any:
        async with storage("a read"):
            return await fragile.get("k")

    async with asyncio.timeout(10):  # the 0.5 s socket timeout must end them, not this
        results = await asyncio.gather(*(read() for _ in range(5)), return_exceptions=True)
        # A pooled command (INFO is not auto-pipelined) keeps redis-py's own read timeout.
        with pytest.raises(RedisTimeoutError):
            await fragile.info("clients")
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    assert all(isinstance(r.__cause__, RedisTimeoutError) for r in results)
    os.kill(own_redis.process.pid, signal.SIGCONT)
    assert await fragile.get("k") == b"v"


async def test_a_lost_connection_fails_every_waiting_command_and_the_next_one_reconnects(
    own_redis: RedisServer, fragile: MuxRedis
) -> None:
    await fragile.set("k", "v")
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    calls = [asyncio.create_task(fragile.get("k")) for _ in range(5)]
    await wait_until(lambda: waiting(fragile) == 5)
    own_redis.process.kill()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    own_redis.stop()
    own_redis.start()
    assert await fragile.get("k") == b"v"  # the AOF kept it; a new connection fetched it


async def test_redis_down_fails_commands_with_storage_unavailable(own_redis: RedisServer) -> None:
    client = connect_redis(own_redis.url, cluster=False)
    own_redis.stop()
    try:
        for _ in range(2):  # and again: a failed connect is not remembered
            with pytest.raises(StorageUnavailable):
                async with storage("a write"):
                    await client.set("k", "v")
    finally:
        await client.aclose()


async def test_blocking_commands_take_a_pooled_connection(redis_client: MuxRedis) -> None:
    blocked = asyncio.create_task(redis_client.blpop(["queue"], timeout=0))
    async with asyncio.timeout(10):
        # While BLPOP waits on its own connection, the shared one keeps answering.
        assert await redis_client.set("k", "v")
        assert await redis_client.get("k") == b"v"
        await redis_client.rpush("queue", "item")
        assert list(await blocked) == [b"queue", b"item"]


async def test_transactions_go_out_whole_on_the_shared_connection(
    redis_server: RedisServer,
) -> None:
    client = named(redis_server.url)
    await client.delete("shared")

    async def transaction(n: int) -> list[Any]:
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("shared")
            pipe.incr("shared")
            pipe.hset(f"h{n}", mapping={"n": n})
            pipe.expire(f"h{n}", 60)
            return await pipe.execute()  # type: ignore[no-any-return]

    try:
        results = await asyncio.gather(*(transaction(n) for n in range(100)))
        # MULTI ... EXEC stays one block among everyone else's commands: adjacent INCRs.
        assert all(second == first + 1 for first, second, _, _ in results)
        assert sorted(first for first, *_ in results) == list(range(1, 200, 2))
        assert all(result[2:] == [1, True] for result in results)
        assert await own_connections(client) == 2
    finally:
        await client.aclose()


async def test_transaction_errors_are_redis_py_s(
    redis_server: RedisServer, redis_client: MuxRedis
) -> None:
    plain = aioredis.Redis.from_url(redis_server.url)

    async def outcomes(client: aioredis.Redis) -> list[Any]:
        await client.delete("text", "n")
        await client.set("text", "v")
        seen: list[Any] = []
        async with client.pipeline() as pipe:  # an error reply inside EXEC, kept in place
            pipe.incr("n").hget("text", "f").incr("n")
            seen.append([repr(r) for r in await pipe.execute(raise_on_error=False)])
        async with client.pipeline() as pipe:  # ... or raised
            pipe.incr("n").hget("text", "f")
            with pytest.raises(ResponseError) as raised:
                await pipe.execute()
            seen.append(str(raised.value))
        async with client.pipeline() as pipe:  # refused while queued: EXECABORT, nothing ran
            pipe.incr("n").execute_command("SET", "text")
            with pytest.raises(ResponseError) as raised:
                await pipe.execute()
            seen.append(str(raised.value))
        seen.append(await client.get("n"))
        return seen

    try:
        mine = await outcomes(redis_client)
        assert mine == await outcomes(plain)
        assert mine[-1] == b"3"
    finally:
        await plain.aclose()


async def test_watched_transactions_and_plain_pipelines_take_the_pool(
    redis_client: MuxRedis,
) -> None:
    await redis_client.set("k", "1")

    async def bump(pipe: Any) -> None:
        value = int(await pipe.get("k"))
        pipe.multi()
        pipe.set("k", value + 1)

    assert await redis_client.transaction(bump, "k") == [True]
    async with redis_client.pipeline(transaction=False) as pipe:
        assert await pipe.get("k").incr("k").execute() == [b"2", 3]


# What bridge/redismux.py relies on in redis-py (private names included), as of the version the
# hashes were taken from. A change means redis-py changed code the module mirrors or calls:
# read it again, adjust redismux.py, then update the hash.
MIRRORED = {
    "Redis.parse_response": aioredis.Redis.parse_response,
    "Redis.execute_command": aioredis.Redis.execute_command,
    "AbstractConnection._force_disconnect": AbstractConnection._force_disconnect,
    "AbstractConnection.pack_command": AbstractConnection.pack_command,
    "_AsyncHiredisParser.read_response": _AsyncHiredisParser.read_response,
}
HASHES = {
    "Redis.parse_response": "6f214fa3412e1825",
    "Redis.execute_command": "fd0145f6df263e08",
    "AbstractConnection._force_disconnect": "f1162ce3e943c602",
    "AbstractConnection.pack_command": "9b7c89df5a6d1110",
    "_AsyncHiredisParser.read_response": "54882231e9026d79",
}


def test_the_redis_py_code_redismux_mirrors_is_unchanged() -> None:
    changed = {
        name: hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
        for name, function in MIRRORED.items()
    }
    changed = {name: digest for name, digest in changed.items() if HASHES[name] != digest}
    assert not changed, (
        f"redis-py {redis.__version__} changed code bridge/redismux.py mirrors: {changed}; "
        "review redismux.py against it, then update HASHES"
    )


async def test_blocking_stream_reads_wait_on_a_kept_connection_of_their_own(
    redis_server: RedisServer,
) -> None:
    client = named(redis_server.url)
    stream, group = f"s-{uuid.uuid4().hex}", "g"
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
        for n in range(3):
            read = asyncio.create_task(
                client.xreadgroup(group, "c", {stream: ">"}, count=10, block=10_000)
            )
            await wait_until(lambda: any(wire.waiting for wire in client._readers))
            # While the read blocks in Redis, the shared connection keeps answering.
            assert await client.set("k", n)
            await client.xadd(stream, {"n": n})
            async with asyncio.timeout(10):
                entries = await read
            assert [fields for _, items in _items(entries) for _, fields in items] == [
                {b"n": str(n).encode()}
            ]
        # Three reads, one reader connection (+ the shared one, + CLIENT LIST's pooled one).
        assert await own_connections(client) == 3
        with pytest.raises(ResponseError, match="NOGROUP"):
            await client.xreadgroup("nogroup", "c", {stream: ">"}, block=10)
        assert await own_connections(client) == 3  # an error reply keeps the reader
    finally:
        await client.aclose()


async def test_a_cancelled_blocking_read_closes_its_connection_and_the_next_read_works(
    redis_server: RedisServer,
) -> None:
    client = named(redis_server.url)
    stream, group = f"s-{uuid.uuid4().hex}", "g"
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
        read = asyncio.create_task(client.xreadgroup(group, "c", {stream: ">"}, block=60_000))
        await wait_until(lambda: len(client._readers) == 1)
        await wait_until(lambda: any(w.waiting for w in client._readers))
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        # Closed, so Redis no longer holds a read that would take the next entry: the pooled
        # connection (XGROUP, CLIENT LIST) is the client's only one left.
        await wait_until(lambda: _connections_are(client, 1))
        await client.xadd(stream, {"n": 1})
        async with asyncio.timeout(10):
            entries = await client.xreadgroup(group, "c", {stream: ">"}, block=10_000)
        assert [fields for _, items in _items(entries) for _, fields in items] == [{b"n": b"1"}]
    finally:
        await client.aclose()


def _items(reply: Any) -> list[tuple[Any, Any]]:
    return list(reply.items()) if isinstance(reply, dict) else list(reply)


async def _connections_are(client: MuxRedis, expected: int) -> bool:
    return await own_connections(client) == expected


async def test_a_connection_lost_mid_transaction_fails_it_without_unretrieved_futures(
    own_redis: RedisServer, fragile: MuxRedis
) -> None:
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))
    try:
        await fragile.set("k", "v")
        assert own_redis.process is not None
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        pipe = fragile.pipeline()
        for n in range(5):
            pipe.set(f"k{n}", n)
        block = asyncio.create_task(pipe.execute())
        await wait_until(lambda: waiting(fragile) == 7)  # MULTI, 5 x QUEUED, EXEC
        own_redis.process.kill()
        with pytest.raises(RedisConnectionError):
            await block
        del block, pipe
        gc.collect()
        await asyncio.sleep(0)
        messages = [str(context.get("message")) for context in unretrieved]
        assert not [m for m in messages if "never retrieved" in m], messages
    finally:
        loop.set_exception_handler(None)
