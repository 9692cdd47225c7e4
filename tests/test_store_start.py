"""ACCEPT_START on a single Redis and a 3-node Cluster: the accept that takes an idle thread's
lease and opens its turn, and every point a process can die at after it (the turn must be
taken over from its pending entry exactly as a turn a worker read)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bridge.codec import text
from bridge.models import Standing
from bridge.redisconn import connect_redis
from bridge.store import Hold, LeaseLost, Store, keys
from bridge.store.client import RedisClient
from bridge.store.queue import ALL_STANDINGS, Accepted
from tests.fixtures_core import message, thread_key
from tests.redis_cluster import RedisCluster
from tests.store_probes import journal, pending, take_lease
from tests.test_store_phases import COMMIT, LEASE_MS, single, unacked


@pytest.fixture
async def store(any_redis: RedisClient) -> Store:
    store = Store(any_redis, record_ttl_seconds=60)
    await store.queue.ensure_group()
    return store


async def accept_start(
    store: Store,
    thread_name: str,
    message_id: str,
    *,
    consumer: str = "c1",
    token: str = "t1",  # noqa: S107
) -> Accepted:
    return await store.queue.accept_start(
        message(thread_key(thread_name), f"text {message_id}", message_id=message_id),
        ALL_STANDINGS,
        consumer=consumer,
        token=token,
        lease_ms=LEASE_MS,
    )


async def owner(store: Store, entry_id: str) -> str:
    """The consumer an entry is pending to ('' if acknowledged)."""
    raw = await store.redis.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min=entry_id, max=entry_id, count=1
    )
    return text(raw[0]["consumer"]) if raw else ""


async def undelivered(store: Store) -> list[str]:
    """Threads of entries no worker has read yet."""
    return [t for _, t in await store.queue.read("probe", ">", 100, None)]


async def test_an_idle_threads_accept_takes_the_lease_and_opens_the_turn(store: Store) -> None:
    thread = thread_key("idle")
    await store.redis.hset(keys.facts(thread), mapping={"origin": "C1"})
    accepted = await accept_start(store, "idle", "m1")
    assert (accepted.standing, accepted.stored) == (Standing.UNKNOWN, True)
    begun = accepted.begun
    assert begun is not None
    assert accepted.entry_id
    assert [json.loads(p)["message_id"] for p in begun.pending] == ["m1"]
    assert (begun.attempt, begun.journal, begun.facts) == (1, [], {"origin": "C1"})
    assert int(begun.claim) == 1  # no conversation: the create claim is taken now
    assert text(await store.redis.get(keys.lease(thread))) == "t1"
    assert await journal(store.redis, thread) == ["m1"]
    # The entry is pending to this consumer from the same step: nothing is left to wake for.
    assert await owner(store, accepted.entry_id) == "c1"
    assert await undelivered(store) == []


async def test_a_started_turn_commits_and_lets_go_like_a_begun_one(store: Store) -> None:
    accepted = await accept_start(store, "commit", "m1")
    assert accepted.begun is not None
    hold = Hold(thread_key("commit"), "t1", accepted.entry_id, attempt=1)
    assert not await store.threads.commit(hold, count=1, **COMMIT)
    assert hold.released
    assert (await unacked(store) == []) is single(store)  # a Cluster worker acks next
    assert not await store.redis.exists(keys.lease(hold.thread), keys.turn(hold.thread))


async def test_a_busy_thread_is_scheduled_and_its_holder_keeps_it(store: Store) -> None:
    thread = thread_key("busy")
    assert await take_lease(store.redis, thread, "theirs", LEASE_MS)
    accepted = await accept_start(store, "busy", "m1")
    assert (accepted.stored, accepted.begun) == (True, None)
    assert text(await store.redis.get(keys.lease(thread))) == "theirs"
    assert len(await pending(store.redis, thread)) == 1
    if single(store):  # scheduled as ACCEPT does
        assert accepted.entry_id == ""
        assert await undelivered(store) == [str(thread)]
    else:  # the entry taken before the push is the thread's schedule, this consumer's to run
        assert await owner(store, accepted.entry_id) == "c1"
        assert await undelivered(store) == []


async def test_threads_in_line_go_first(store: Store) -> None:
    await store.queue.enqueue(message(thread_key("first"), message_id="f1"))
    accepted = await accept_start(store, "second", "s1")
    assert (accepted.stored, accepted.begun, accepted.entry_id) == (True, None, "")
    assert not await store.redis.exists(keys.lease(thread_key("second")))
    assert await undelivered(store) == [str(thread_key("first")), str(thread_key("second"))]


async def test_a_duplicate_starts_nothing_and_is_scheduled_again(store: Store) -> None:
    first = await accept_start(store, "dup", "m1")
    assert first.begun is not None
    hold = Hold(thread_key("dup"), "t1", first.entry_id, attempt=1)
    assert not await store.threads.commit(hold, count=1, **COMMIT)
    if not single(store):
        await store.queue.ack(first.entry_id)
    again = await accept_start(store, "dup", "m1", token="t2")
    assert (again.stored, again.begun) == (False, None)
    assert not await store.redis.exists(keys.lease(hold.thread))
    scheduled = [str(hold.thread)] if single(store) else []
    assert await undelivered(store) == scheduled
    assert (again.entry_id == "") is single(store)


async def test_a_message_not_taken_writes_nothing(store: Store) -> None:
    thread = thread_key("chatter")
    await store.records.put(thread, {"conversation_id": "c1", "status": "human"})
    accepted = await store.queue.accept_start(
        message(thread, message_id="x1"),
        {Standing.UNKNOWN},
        consumer="c1",
        token="t1",
        lease_ms=LEASE_MS,
    )
    assert accepted == Accepted(Standing.HUMAN, None)
    assert not await store.redis.exists(keys.lease(thread), keys.inbox(thread))
    assert await unacked(store) == []  # a Cluster's entry taken first is acknowledged
    assert await undelivered(store) == []


async def test_a_process_dead_after_the_accept_leaves_its_turn_to_the_claim(
    store: Store,
) -> None:
    """SIGKILL after ACCEPT_START (before or during the turn): the lease runs out, the entry goes
    idle and another worker claims it; its BEGIN opens the same batch, counted as attempt 2."""
    accepted = await accept_start(store, "dead", "m1", consumer="dead")
    thread = thread_key("dead")
    await accept_start(store, "dead", "m2", consumer="other")  # arrives mid-turn: waits
    await store.redis.delete(keys.lease(thread))  # ran out
    _, claimed = await store.queue.claim_idle("rescuer", "0-0", 0, 10)
    assert (accepted.entry_id, str(thread)) in claimed
    hold = Hold(thread, "rescue", accepted.entry_id)
    begun = await store.threads.begin(hold, LEASE_MS, acquire=True)
    assert begun is not None
    assert [json.loads(p)["message_id"] for p in begun.pending] == ["m1", "m2"]
    assert (begun.journal, begun.attempt) == (["m1"], 2)  # the dead turn may have reached the agent
    assert not await store.threads.commit(hold, count=2, **COMMIT)
    if not single(store):
        await store.queue.ack(accepted.entry_id)
    assert await owner(store, accepted.entry_id) == ""


@pytest.fixture
async def cluster_store(redis_cluster: RedisCluster) -> AsyncIterator[Store]:
    client = connect_redis(redis_cluster.url, cluster=True)
    await client.flushall(target_nodes=aioredis.RedisCluster.PRIMARIES)
    store = Store(client, record_ttl_seconds=60)
    await store.queue.ensure_group()
    yield store
    await client.aclose()


async def test_a_cluster_process_dead_between_its_entry_and_its_accept_loses_nothing(
    cluster_store: Store,
) -> None:
    """Cluster (a single Redis takes the entry and the message in one step): the entry is taken
    (first round trip), the process dies before the push. The platform redelivers; the orphan
    entry, claimed later, finds nothing to do."""
    store = cluster_store
    thread = thread_key("gap")
    orphan = await store.queue._start.take_entry(thread, "dead")
    assert orphan
    assert await owner(store, orphan) == "dead"
    redelivered = await accept_start(store, "gap", "m1")
    assert redelivered.begun is not None  # an entry pending to a dead consumer is not in line
    _, claimed = await store.queue.claim_idle("rescuer", "0-0", 0, 10)
    assert (orphan, str(thread)) in claimed
    late = Hold(thread, "late", orphan)
    assert await store.threads.begin(late, LEASE_MS, acquire=True) is None  # the holder's
    started = Hold(thread, "t1", redelivered.entry_id, attempt=1)
    assert not await store.threads.commit(started, count=1, **COMMIT)
    assert await pending(store.redis, thread) == []


async def test_a_started_holder_that_lost_its_lease_changes_nothing(store: Store) -> None:
    accepted = await accept_start(store, "fenced", "m1")
    thread = thread_key("fenced")
    hold = Hold(thread, "t1", accepted.entry_id, attempt=1)
    await store.redis.delete(keys.lease(thread))
    assert await take_lease(store.redis, thread, "new-holder", LEASE_MS)
    assert not await store.threads.heartbeat(hold, LEASE_MS, "c1")
    with pytest.raises(LeaseLost):
        await store.threads.commit(hold, count=1, **COMMIT)
    assert len(await pending(store.redis, thread)) == 1
    assert await owner(store, accepted.entry_id) == "c1"  # left for the claim, not acknowledged


async def test_a_started_turns_heartbeat_keeps_its_entry_fresh(store: Store) -> None:
    accepted = await accept_start(store, "beat", "m1")
    hold = Hold(thread_key("beat"), "t1", accepted.entry_id, attempt=1)
    assert await store.threads.heartbeat(hold, LEASE_MS, "c1")
    _, claimed = await store.queue.claim_idle("thief", "0-0", 60_000, 10)
    assert claimed == []
    assert await owner(store, accepted.entry_id) == "c1"
