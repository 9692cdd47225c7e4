"""Thread map on real Redis and the emulator: one conversation per thread, data, recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.engage.client import EngageClient
from bridge.store import Namespace, RedisClient, keys
from bridge.store.threads import Claim, CreateClaim
from bridge.threadmap import ThreadMap
from tests.fixtures_core import (
    RecordingAdapter,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)


def conversations_for(emulator: Any, key: str) -> list[Any]:
    return [c for c in emulator.state.conversations.values() if c.data.get("thread_key") == key]


async def test_one_conversation_per_thread_under_50_concurrent_first_messages(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridges = [
        make_bridge(redis_client, engage_client, adapter, consumer=f"w{i}") for i in range(3)
    ]
    threads = [thread_key(n) for n in range(5)]
    firsts = [message(t, f"{t.thread}-{i}") for t in threads for i in range(10)]
    async with running(*bridges):
        results = await asyncio.gather(*(bridges[i % 3].submit(m) for i, m in enumerate(firsts)))
        assert all(r.accepted for r in results)

        async def all_answered() -> bool:
            users = sum(
                1
                for c in emulator.state.conversations.values()
                for m in c.messages
                if m.role == "user"
            )
            return users == 50 and await redis_client.xlen(keys.READY_STREAM) == 0

        await wait_until(all_answered, timeout=30)
    for t in threads:
        [conversation] = conversations_for(emulator, str(t))
        users = [m.content for m in conversation.messages if m.role == "user"]
        assert sorted(users) == sorted(f"{t.thread}-{i}" for i in range(10))


async def test_conversation_is_created_with_source_and_data(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("x")
    await bridge.submit(message(thread, "hi", user_id="U7", user_name="Grace", ticket_id="TCK-9"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
    [conversation] = conversations_for(emulator, str(thread))
    assert conversation.source == "console"
    assert conversation.data == {
        "user_id": "U7",
        "user_name": "Grace",
        "ticket_id": "TCK-9",
        "thread_key": str(thread),
        "platform": "console",
        "workspace_id": "W1",
        "channel_id": "C1",
        "thread_id": "tx",
        "permalink": "https://chat.example/p/1",
        "status": "bot",
    }
    record = await bridge.threads.get(thread)
    assert record is not None
    assert record.conversation_id == conversation.id
    assert record.agent == "parrot"
    assert record.status == "bot"
    assert (
        0 < await redis_client.ttl(keys.record(thread)) <= bridge.settings.thread_idle_ttl_seconds
    )


async def test_ticket_id_defaults_to_the_platform_thread_id(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    record, created = await bridge.threads.ensure(engage_client, message(thread_key(5)), "parrot")
    assert created
    assert emulator.state.conversations[record.conversation_id].data["ticket_id"] == "t5"


async def test_a_create_that_crashed_before_the_redis_write_is_found_not_repeated(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    thread = thread_key("crash")
    orphan = await engage_client.create_conversation(
        data={"thread_key": str(thread)}, source="console"
    )
    await redis_client.set(keys.create_claim(thread), "dead-worker")
    record, created = await bridge.threads.ensure(engage_client, message(thread), "parrot")
    assert not created
    assert record.conversation_id == orphan.id
    assert len(conversations_for(emulator, str(thread))) == 1
    assert not await redis_client.exists(keys.create_claim(thread))


async def test_rebuild_map_restores_records_newest_conversation_wins(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    a, b = thread_key("a"), thread_key("b")
    old = await engage_client.create_conversation(data={"thread_key": str(a)}, source="console")
    new = await engage_client.create_conversation(
        data={"thread_key": str(a), "status": "human"}, source="console"
    )
    other = await engage_client.create_conversation(data={"thread_key": str(b)}, source="web")
    await engage_client.create_conversation(data={"unrelated": True})
    assert old.id != new.id
    assert await bridge.rebuild_map() == 2
    rec_a, rec_b = await bridge.threads.get(a), await bridge.threads.get(b)
    assert rec_a is not None
    assert rec_a.conversation_id == new.id
    assert rec_a.status == "human"
    assert rec_b is not None
    assert rec_b.conversation_id == other.id
    assert rec_b.source == "web"


async def test_list_show_and_forget_threads(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    for n in range(3):
        await bridge.threads.ensure(engage_client, message(thread_key(n)), "parrot")
    listed = await bridge.threads.list()
    assert sorted(r.thread_key for r in listed) == sorted(str(thread_key(n)) for n in range(3))
    assert await bridge.threads.forget(thread_key(1))
    assert await bridge.threads.get(thread_key(1)) is None
    assert not await bridge.is_known_thread(thread_key(1))
    assert await bridge.is_known_thread(thread_key(0))


async def test_a_claim_taken_by_begin_creates_at_once_and_a_found_one_searches_first(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    searches: list[int] = []
    search = engage_client.search_own_conversations

    async def counted(**kw: Any) -> Any:
        searches.append(1)
        return await search(**kw)

    monkeypatch.setattr(engage_client, "search_own_conversations", counted)
    taken, found = thread_key("taken"), thread_key("found")
    claim = CreateClaim(Claim.TAKEN)
    await redis_client.set(keys.create_claim(taken), "begin")
    record, created = await bridge.threads.ensure(
        engage_client, message(taken), "parrot", read=None, claim=claim
    )
    assert created
    assert claim.tried
    assert not claim.release_at_commit
    assert searches == []
    assert not await redis_client.exists(keys.create_claim(taken))
    # A create this turn already tried (and lost the answer of) is looked for before another.
    retried = CreateClaim(Claim.TAKEN, tried=True)
    again, created = await bridge.threads.ensure(
        engage_client, message(taken), "parrot", read=None, claim=retried
    )
    assert (again.conversation_id, created) == (record.conversation_id, False)
    assert searches == [1]
    orphan = await engage_client.create_conversation(
        data={"thread_key": str(found)}, source="console"
    )
    await redis_client.set(keys.create_claim(found), "dead-worker")
    record, created = await bridge.threads.ensure(
        engage_client, message(found), "parrot", read=None, claim=CreateClaim(Claim.FOUND)
    )
    assert (record.conversation_id, created) == (orphan.id, False)
    assert len(conversations_for(emulator, str(found))) == 1


async def test_facts_noted_before_the_conversation_go_into_its_data_the_core_wins(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    thread = thread_key("facts")
    facts = {"slack_context_channel_id": "C9", "channel_id": "not-this"}
    claim = CreateClaim(Claim.TAKEN, facts)
    record, created = await bridge.threads.ensure(
        engage_client, message(thread), "parrot", read=None, claim=claim
    )
    assert created
    data = emulator.state.conversations[record.conversation_id].data
    assert data["slack_context_channel_id"] == "C9"
    assert data["channel_id"] == thread.channel


async def test_facts_kept_under_an_adapters_old_key_move_to_the_thread_unless_newer_exist(
    any_redis: RedisClient,
) -> None:
    old = Namespace("slack")
    moved, kept = thread_key("moved", "slack"), thread_key("kept", "slack")
    for thread in (moved, kept):
        await any_redis.hset(old.thread(thread, "context"), mapping={"where": "old"})
        await any_redis.expire(old.thread(thread, "context"), 1000)
    threads = ThreadMap(any_redis)
    await threads.note_facts(kept, {"where": "new"})  # noted after the upgrade: newer

    assert await threads.adopt_facts(old, "context") == 1

    assert await any_redis.hgetall(keys.facts(moved)) == {b"where": b"old"}
    assert 0 < await any_redis.ttl(keys.facts(moved)) <= 1000  # the old key's TTL went with it
    assert await any_redis.hgetall(keys.facts(kept)) == {b"where": b"new"}
    assert not await any_redis.exists(old.thread(moved, "context"))
    assert not await any_redis.exists(old.thread(kept, "context"))
    # A pass that finds none marks the move done: later starts skip the scan.
    assert await threads.adopt_facts(old, "context") == 0
    assert await any_redis.exists(old.shared("context", "adopted"))


async def test_a_first_turn_that_creates_nothing_leaves_no_create_claim(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("status-first")
    async with running(bridge):
        assert (await bridge.submit(message(thread, "status"))).accepted

        async def committed() -> bool:
            return not await redis_client.exists(keys.inbox(thread), keys.lease(thread))

        await wait_until(committed)
    assert adapter.sent[0].text.startswith("No conversation yet")
    assert not await redis_client.exists(keys.create_claim(thread))
    assert conversations_for(emulator, str(thread)) == []


class HeldRecordWrites:
    """Record writes that reach Redis only once released (each in the task that wrote it)."""

    def __init__(self, bridge: Any) -> None:
        self._records = bridge.threads._records
        self._put = self._records.put
        self.release = asyncio.Event()
        self.held: list[asyncio.Task[Any]] = []
        self._records.put = self.put

    async def put(self, *args: Any, **kwargs: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.held.append(task)
        await self.release.wait()
        await self._put(*args, **kwargs)


async def test_a_new_threads_chat_does_not_wait_for_its_record_write_its_commit_does(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    writes = HeldRecordWrites(bridge)
    thread = thread_key("alongside")
    await bridge.submit(message(thread, "hello"))
    async with running(bridge):
        # Answered while the new record's write is still held: the chat did not wait for it.
        await wait_until(lambda: adapter.texts(thread) == ["You said: hello"])
        assert len(writes.held) == 1
        assert await bridge.threads.get(thread) is None
        assert await redis_client.llen(keys.inbox(thread)) == 1  # not committed yet
        assert await redis_client.exists(keys.create_claim(thread))
        writes.release.set()

        async def committed() -> bool:
            return await redis_client.llen(keys.inbox(thread)) == 0

        await wait_until(committed)
    record = await bridge.threads.get(thread)
    assert record is not None
    [conversation] = conversations_for(emulator, str(thread))
    assert record.conversation_id == conversation.id
    assert not await redis_client.exists(keys.create_claim(thread))


async def test_a_holder_gone_before_its_record_write_landed_is_taken_over_answering_once(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    first = make_bridge(redis_client, engage_client, adapter, consumer="gone")
    writes = HeldRecordWrites(first)
    thread = thread_key("gone")
    await first.submit(message(thread, "hello"))
    async with running(first):
        await wait_until(lambda: adapter.texts(thread) == ["You said: hello"])
    for task in writes.held:  # the write never lands: its process is gone
        task.cancel()
    await asyncio.gather(*writes.held, return_exceptions=True)
    assert await bridge_record(first, thread) is None
    assert await redis_client.exists(keys.create_claim(thread))
    second = make_bridge(redis_client, engage_client, adapter, consumer="next")
    async with running(second):
        # Taken over once the lease and the claim's idle time ran out: the claim's search
        # finds the conversation, the retried turn reconciles and posts nothing twice.
        await wait_until(lambda: bridge_record(second, thread), timeout=20)

        async def committed() -> bool:
            return await redis_client.llen(keys.inbox(thread)) == 0

        await wait_until(committed, timeout=20)
    assert adapter.texts(thread) == ["You said: hello"]
    [conversation] = conversations_for(emulator, str(thread))
    assert [m.role for m in conversation.messages] == ["user", "agent"]
    record = await second.threads.get(thread)
    assert record is not None
    assert record.conversation_id == conversation.id


async def bridge_record(bridge: Any, thread: Any) -> Any:
    return await bridge.threads.get(thread)
