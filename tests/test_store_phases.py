"""The store's one-step scripts on a single Redis and a 3-node Cluster: accept, begin, heartbeat,
hand back and commit, with their fencing and (single Redis) the scheduling entry's ack."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.models import Standing
from bridge.store import Hold, LeaseLost, Store, keys
from bridge.store.client import RedisClient
from bridge.store.threads import Claim
from tests.fixtures_core import message, thread_key
from tests.store_probes import journal, pending, take_lease

LEASE_MS = 5000
COMMIT = {"last_message_id": "m", "mark": "", "now": "t", "record_ttl": 60}


@pytest.fixture
async def store(any_redis: RedisClient) -> Store:
    store = Store(any_redis, record_ttl_seconds=60)
    await store.queue.ensure_group()
    return store


def single(store: Store) -> bool:
    return not isinstance(store.redis, aioredis.RedisCluster)


async def unacked(store: Store) -> list[str]:
    """Ids of entries delivered to a consumer and not acknowledged."""
    raw: Any = await store.redis.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min="-", max="+", count=100
    )
    return [str(p["message_id"], "utf-8") for p in raw]


async def take_entry(store: Store, thread_name: str) -> Hold:
    """Enqueue one message on a new thread and read its scheduling entry as a worker would."""
    thread = thread_key(thread_name)
    await store.queue.enqueue(message(thread, "hi", message_id=f"{thread_name}-1"))
    entries = await store.queue.read("w1", ">", 10, None)
    assert [t for _, t in entries] == [str(thread)]
    return Hold(thread, f"token-{thread_name}", entries[0][0])


async def test_accept_reads_the_standing_and_writes_only_where_it_is_taken(store: Store) -> None:
    fresh, busy, human = thread_key("fresh"), thread_key("busy"), thread_key("human")
    only_known = {Standing.KNOWN}
    assert await store.queue.accept(message(fresh, message_id="f1"), only_known) == (
        Standing.UNKNOWN,
        None,
    )
    assert not await store.redis.exists(keys.seen(fresh, "f1"), keys.inbox(fresh))
    assert await store.queue.depth() == 0  # nothing scheduled either

    assert await store.queue.accept(message(busy, message_id="b1")) == (Standing.UNKNOWN, True)
    assert await store.queue.accept(message(busy, message_id="b2"), only_known) == (
        Standing.KNOWN,
        True,
    )
    await store.records.put(human, {"conversation_id": "c1", "status": "human"})
    assert await store.queue.accept(message(human, message_id="h1"), only_known) == (
        Standing.HUMAN,
        None,
    )
    assert await store.queue.accept(message(human, message_id="h1")) == (Standing.HUMAN, True)
    # A duplicate is not pushed again but scheduled again (it may be a stranded message's).
    assert await store.queue.accept(message(human, message_id="h1")) == (Standing.HUMAN, False)
    assert len(await pending(store.redis, human)) == 1
    assert await store.queue.depth() == 4


async def test_a_record_not_owned_by_a_human_makes_the_thread_known(store: Store) -> None:
    thread = thread_key("bot")
    await store.records.put(thread, {"conversation_id": "c1", "status": "bot"})
    assert await store.queue.accept(message(thread), set()) == (Standing.KNOWN, None)


async def test_begin_finding_nothing_or_another_holder_acknowledges_the_entry(
    store: Store,
) -> None:
    hold = await take_entry(store, "empty")
    other = Hold(hold.thread, "theirs")
    assert await take_lease(store.redis, hold.thread, "theirs", LEASE_MS)
    assert await store.threads.begin(hold, LEASE_MS, acquire=True) is None
    # The holder looks at the inbox again before it lets go: this entry has done its job.
    assert hold.acked is single(store)
    assert (await unacked(store) == []) is single(store)
    assert await store.threads.begin(other, LEASE_MS, acquire=False) is not None


async def test_commit_acknowledges_the_entry_only_when_it_lets_go(store: Store) -> None:
    hold = await take_entry(store, "commit")
    await store.queue.enqueue(message(hold.thread, "more", message_id="commit-2"))
    assert await store.threads.begin(hold, LEASE_MS, acquire=True) is not None
    assert await store.threads.commit(hold, count=1, **COMMIT)  # more pending: lease kept
    assert not hold.acked
    assert await unacked(store) == [hold.entry_id]
    assert not await store.threads.commit(hold, count=1, **COMMIT)
    assert hold.acked is single(store)
    assert (await unacked(store) == []) is single(store)
    assert await take_lease(store.redis, hold.thread, "next", LEASE_MS)


async def test_a_commit_after_the_lease_was_lost_changes_nothing_not_even_the_ack(
    store: Store,
) -> None:
    hold = await take_entry(store, "lost")
    assert await store.threads.begin(hold, LEASE_MS, acquire=True) is not None
    await store.redis.delete(keys.lease(hold.thread))
    assert await take_lease(store.redis, hold.thread, "new-holder", LEASE_MS)
    with pytest.raises(LeaseLost):
        await store.threads.commit(hold, count=1, unclaim=True, **COMMIT)
    assert len(await pending(store.redis, hold.thread)) == 1
    assert await journal(store.redis, hold.thread) == ["lost-1"]
    assert await store.redis.exists(keys.create_claim(hold.thread))
    assert await unacked(store) == [hold.entry_id]
    assert not hold.acked
    assert not hold.released


async def test_begin_takes_the_create_claim_of_a_thread_without_conversation(
    store: Store,
) -> None:
    hold = await take_entry(store, "claim")
    begun = await store.threads.begin(hold, LEASE_MS, acquire=True)
    assert begun is not None
    assert begun.claim is Claim.TAKEN
    # A turn that created nothing (a command, a note) lets the claim go with its commit.
    await store.queue.enqueue(message(hold.thread, "two", message_id="claim-2"))
    assert await store.threads.commit(hold, count=1, unclaim=True, **COMMIT)
    assert not await store.redis.exists(keys.create_claim(hold.thread))
    begun = await store.threads.begin(hold, LEASE_MS, acquire=False)
    assert begun is not None
    assert begun.claim is Claim.TAKEN
    # One that tried a create and failed keeps it: the next one looks for the conversation.
    assert not await store.threads.commit(hold, count=1, unclaim=False, **COMMIT)
    assert await store.redis.exists(keys.create_claim(hold.thread))
    await store.queue.enqueue(message(hold.thread, "three", message_id="claim-3"))
    again = await store.threads.begin(Hold(hold.thread, "next"), LEASE_MS, acquire=True)
    assert again is not None
    assert again.claim is Claim.FOUND


async def test_begin_leaves_the_claim_alone_once_the_thread_has_a_conversation(
    store: Store,
) -> None:
    hold = await take_entry(store, "known")
    await store.records.put(hold.thread, {"conversation_id": "c1"})
    begun = await store.threads.begin(hold, LEASE_MS, acquire=True)
    assert begun is not None
    assert begun.claim is Claim.NONE
    assert not await store.redis.exists(keys.create_claim(hold.thread))


async def test_heartbeat_extends_only_its_own_lease_and_keeps_the_entry_fresh(
    store: Store,
) -> None:
    hold = await take_entry(store, "beat")
    assert await store.threads.begin(hold, 1000, acquire=True) is not None
    assert await store.threads.heartbeat(hold, 60_000, "w1")
    assert await store.redis.pttl(keys.lease(hold.thread)) > 30_000
    idle: Any = await store.redis.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min="-", max="+", count=1
    )
    assert idle[0]["time_since_delivered"] < 1000
    await store.redis.set(keys.lease(hold.thread), "new-holder", px=1000)
    assert not await store.threads.heartbeat(hold, 60_000, "w1")
    assert await store.redis.pttl(keys.lease(hold.thread)) <= 1000  # theirs, untouched


async def test_hand_back_lets_go_schedules_again_and_acknowledges(store: Store) -> None:
    hold = await take_entry(store, "back")
    assert await store.threads.begin(hold, LEASE_MS, acquire=True) is not None
    with pytest.raises(LeaseLost):
        await store.threads.hand_back(Hold(hold.thread, "not-mine", hold.entry_id))
    await store.threads.hand_back(hold)
    assert hold.released
    assert hold.acked is single(store)
    entries = await store.queue.read("w2", ">", 10, None)
    assert [t for _, t in entries] == [str(hold.thread)]
    assert await take_lease(store.redis, hold.thread, "next", LEASE_MS)


async def test_begin_reads_a_threads_facts_only_while_it_has_no_conversation(
    store: Store,
) -> None:
    hold = await take_entry(store, "facts")
    await store.records.note_facts(hold.thread, {"slack_context_channel_id": "C9"})
    await store.records.note_facts(hold.thread, {"slack_context_channel_id": "C8"})  # replaced
    begun = await store.threads.begin(hold, LEASE_MS, acquire=True)
    assert begun is not None
    assert begun.facts == {"slack_context_channel_id": "C8"}
    await store.records.put(hold.thread, {"conversation_id": "c1"})
    await store.queue.enqueue(message(hold.thread, "two", message_id="facts-2"))
    assert await store.threads.commit(hold, count=1, **COMMIT)
    again = await store.threads.begin(hold, LEASE_MS, acquire=False)
    assert again is not None
    assert again.facts == {}
