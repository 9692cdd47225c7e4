"""The store on a real Redis: keys, scripts and their fencing, error translation."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bridge.codec import decode_message
from bridge.errors import StorageUnavailable
from bridge.models import Standing
from bridge.store import Hold, LeaseLost, Namespace, Store, keys
from bridge.store.threads import Claim
from tests.fixtures_core import message, thread_key
from tests.store_probes import journal, pending, take_lease


@pytest.fixture
def store(redis_client: aioredis.Redis) -> Store:
    return Store(redis_client, record_ttl_seconds=60)


def test_namespaced_keys_share_the_thread_slot_or_live_under_bridge() -> None:
    thread = thread_key("ns", platform="slack")
    slack = Namespace("slack")
    assert slack.thread(thread, "parts") == "{slack:W1:C1:tns}:slack:parts"
    assert slack.thread(thread, "parts").startswith(keys.tag(thread))
    assert Namespace("discord").shared("upto", "G1") == "bridge:discord:upto:G1"


async def test_enqueue_claims_once_pushes_in_order_and_schedules_every_delivery(
    store: Store,
) -> None:
    thread = thread_key("q")
    first, second = message(thread, "one"), message(thread, "two")
    assert await store.queue.enqueue(first)
    assert not await store.queue.enqueue(first)
    assert await store.queue.enqueue(second)
    texts = [decode_message(raw).text for raw in await pending(store.redis, thread)]
    assert texts == ["one", "two"]
    assert await store.queue.depth() == 3  # the duplicate too: it may be a stranded message's
    assert await store.queue.accept(first) == (Standing.KNOWN, False)


async def test_only_the_lease_holder_commits_and_the_last_commit_lets_go(
    store: Store,
) -> None:
    thread = thread_key("lease")
    mine, theirs = Hold(thread, "mine"), Hold(thread, "theirs")
    await store.queue.enqueue(message(thread, "a", message_id="a"))
    first = await store.threads.begin(mine, 5000, acquire=True)
    assert first is not None
    assert (first.journal, first.attempt) == ([], 1)
    assert await journal(store.redis, thread) == ["a"]  # written by BEGIN, for a retry
    assert await store.threads.begin(theirs, 5000, acquire=True) is None
    with pytest.raises(LeaseLost):
        await store.threads.commit(
            theirs, count=1, last_message_id="a", mark="", now="t", record_ttl=60
        )
    assert len(await pending(store.redis, thread)) == 1
    again = await store.threads.begin(mine, 5000, acquire=False)  # as a retried attempt would
    assert again is not None
    assert (again.journal, again.attempt) == (["a"], 2)
    more = await store.threads.commit(
        mine, count=1, last_message_id="a", mark="", now="t", record_ttl=60
    )
    assert not more
    assert await pending(store.redis, thread) == []
    assert await journal(store.redis, thread) == []
    assert not await store.redis.exists(keys.attempts(thread))  # the next head counts anew
    with pytest.raises(LeaseLost):
        await store.threads.hand_back(mine)
    await store.queue.enqueue(message(thread, "b", message_id="b"))
    later = await store.threads.begin(Hold(thread, "next"), 5000, acquire=True)
    assert later is not None
    assert (later.journal, later.attempt) == ([], 1)
    await store.threads.hand_back(Hold(thread, "next"))
    assert await take_lease(store.redis, thread, "after", 5000)


async def test_swap_writes_only_over_the_expected_conversation(store: Store) -> None:
    thread = thread_key("swap")
    await store.records.put(thread, {"conversation_id": "c1", "agent": "a"})
    assert not await store.records.swap(thread, "c0", {"conversation_id": "x"})
    assert await store.records.swap(thread, "c1", {"conversation_id": "c2"})
    assert (await store.records.get(thread))[b"conversation_id"] == b"c2"


async def test_posted_ledger_and_dead_letters_round_trip(store: Store) -> None:
    thread = thread_key("led")
    assert await store.posted.get(thread, "m1") is None
    await store.posted.record(thread, "m1", "p1")
    assert await store.posted.get(thread, "m1") == "p1"
    assert await store.dead_letters.add("t1", "{}")
    assert not await store.dead_letters.add("t1", "{other}")
    assert await store.dead_letters.all() == ["{}"]
    assert await store.dead_letters.remove("t1")
    assert await store.dead_letters.get("t1") is None


async def test_redis_errors_leave_the_store_as_storage_unavailable() -> None:
    down = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    store = Store(down, record_ttl_seconds=60)
    try:
        with pytest.raises(StorageUnavailable):
            await store.queue.enqueue(message(thread_key("down"), "lost?"))
        with pytest.raises(StorageUnavailable):
            await store.records.get(thread_key("down"))
    finally:
        await down.aclose()


async def test_begin_takes_the_lease_and_reads_the_whole_turn_in_one_step(store: Store) -> None:
    thread = thread_key("begin")
    mine, theirs = Hold(thread, "mine"), Hold(thread, "theirs")
    # Nothing pending: the lease is taken and let go at once.
    assert await store.threads.begin(mine, 5000, acquire=True) is None
    assert await take_lease(store.redis, thread, "other", 5000)
    await store.threads.hand_back(Hold(thread, "other"))
    await store.records.put(thread, {"conversation_id": "c1", "status": "bot"})
    for n in (1, 2):
        await store.queue.enqueue(message(thread, f"m{n}", message_id=f"m{n}"))
    begun = await store.threads.begin(mine, 5000, acquire=True)
    assert begun is not None
    assert [decode_message(raw).text for raw in begun.pending] == ["m1", "m2"]
    assert begun.record["conversation_id"] == "c1"
    assert (begun.journal, begun.attempt, begun.claim) == ([], 1, Claim.NONE)
    assert await store.threads.begin(theirs, 5000, acquire=True) is None
    with pytest.raises(LeaseLost):
        await store.threads.begin(theirs, 5000, acquire=False)
    again = await store.threads.begin(mine, 5000, acquire=False)
    assert again is not None
    assert (again.journal, again.attempt) == (["m1", "m2"], 2)
    # The commit keeps the lease while work is pending and lets go with the last message.
    commit = {"last_message_id": "m", "mark": "", "now": "t", "record_ttl": 60}
    assert await store.threads.commit(mine, count=1, **commit)
    assert not await store.threads.commit(mine, count=1, **commit)
    assert await take_lease(store.redis, thread, "next", 5000)


async def test_messages_enqueued_together_arrive_together_in_order_once(store: Store) -> None:
    thread = thread_key("together")
    batch = [message(thread, t, message_id=t) for t in ("x", "y", "z")]
    assert await store.queue.enqueue_together(thread, batch) == 3
    assert await store.queue.enqueue_together(thread, batch[1:]) == 0
    texts = [decode_message(raw).text for raw in await pending(store.redis, thread)]
    assert texts == ["x", "y", "z"]


async def test_adopting_orphans_frees_every_lease_and_moves_every_unacked_entry(
    store: Store,
) -> None:
    threads = [thread_key("orphan-a"), thread_key("orphan-b")]
    for thread in threads:
        await store.queue.enqueue(message(thread, "a", message_id=f"m-{thread.thread}"))
    await store.queue.ensure_group()
    taken = await store.queue.read("dead-worker", ">", 10, None)
    assert len(taken) == 2
    assert await take_lease(store.redis, threads[0], "dead-token", 60_000)

    assert await store.adopt_orphans("new-worker") == (1, 2)

    assert sorted(await store.queue.read("new-worker", "0", 10, None)) == sorted(taken)
    assert await take_lease(store.redis, threads[0], "new-token", 60_000)
    dead = Hold(threads[0], "dead-token")
    assert not await store.threads.heartbeat(dead, 60_000, "dead-worker")  # fenced out
    consumers = await store.redis.xinfo_consumers(keys.READY_STREAM, keys.WORKER_GROUP)
    assert [c["name"] for c in consumers] in (["new-worker"], [b"new-worker"])
