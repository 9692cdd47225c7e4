"""The hand-off: dedupe, policy, durability, and behaviour while Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.engage.client import EngageClient
from bridge.errors import StorageUnavailable
from bridge.models import Origin
from bridge.store import keys
from tests.fixtures_core import (
    RecordingAdapter,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)
from tests.fixtures_emulator import hold_answers, release_answers
from tests.redis_server import RedisServer


async def test_a_duplicate_delivery_is_answered_once(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    original = message(text="twice?", message_id="evt-1")
    first = await bridge.submit(original)
    again = await bridge.submit(original)
    assert first.accepted
    assert first.extra["outcome"] == "accepted"
    assert not again.accepted
    assert again.extra["outcome"] == "duplicate"
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
        assert not (await bridge.submit(original)).accepted

        async def drained() -> bool:
            return await redis_client.xlen(keys.READY_STREAM) == 0

        await wait_until(drained)
    assert adapter.texts() == ["You said: twice?"]
    cid = adapter.sent[0].conversation_id
    assert [m.content for m in emulator.state.messages(cid or "") if m.role == "user"] == ["twice?"]
    assert bridge.metrics.duplicates_dropped.labels("console")._value.get() == 2


async def test_ignored_messages_are_not_stored(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    result = await bridge.submit(message(text="chatter", is_dm=False))
    assert not result.accepted
    assert result.extra["outcome"] == "ignored"
    assert result.reason == "not addressed to the bot"
    assert await redis_client.xlen(keys.READY_STREAM) == 0
    assert await bridge.queue_depth() == 0


async def test_a_message_ignored_in_every_standing_needs_no_redis(
    emulator: Any, engage_client: EngageClient
) -> None:
    down = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    try:
        bridge = make_bridge(down, engage_client, RecordingAdapter())
        result = await bridge.submit(message(text="from a bot", origin=Origin.BOT))
        assert (result.accepted, result.reason) == (False, "written by a bot")
        # Ignored only in some standings: the standing must be read, so Redis is needed.
        with pytest.raises(StorageUnavailable):
            await bridge.submit(message(text="chatter", is_dm=False))
    finally:
        await down.aclose()


async def test_a_follow_up_sent_before_the_first_message_was_answered_is_accepted(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    first = message(text="first", is_dm=False, mentions_bot=True)
    follow_up = message(first.thread, text="follow-up", is_dm=False)
    assert not await bridge.is_known_thread(first.thread)
    assert (await bridge.submit(first)).accepted
    # No conversation yet (no worker ran): the waiting first message makes the thread known.
    assert await bridge.is_known_thread(first.thread)
    result = await bridge.submit(follow_up)
    assert result.accepted, result.reason
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
    assert adapter.texts() == ["You said: first\nfollow-up"]


async def test_submit_returns_once_the_message_is_in_redis(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    thread = thread_key("d")
    await bridge.submit(message(thread, "kept"))
    assert await redis_client.llen(keys.inbox(thread)) == 1
    assert await bridge.queue_depth() == 1


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def own_redis_client(own_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=1)
    yield client
    await client.aclose()


async def test_redis_down_fails_submits_loudly_and_loses_nothing_accepted(
    own_redis: RedisServer,
    own_redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(own_redis_client, engage_client, adapter)
    threads = [thread_key(n) for n in range(4)]
    async with running(bridge):
        for t in threads[:2]:
            assert (await bridge.submit(message(t, "before"))).accepted
        await wait_until(lambda: len(adapter.sent) == 2)
        hold_answers(emulator)
        for t in threads[2:]:
            assert (await bridge.submit(message(t, "accepted just before"))).accepted
        # Both accepted turns must have reached the agent before Redis goes: a turn that has not
        # begun by then cannot begin until Redis is back; and their agents must still be at work.
        await wait_until(lambda: emulator.faults.answers_held == 2)
        own_redis.stop()
        with pytest.raises(StorageUnavailable):
            await bridge.submit(message(threads[0], "while down"))
        with pytest.raises(StorageUnavailable):
            await bridge.is_known_thread(threads[0])

        def agent_answers() -> int:
            return sum(
                m.role == "agent" for c in emulator.state.conversations.values() for m in c.messages
            )

        # The in-flight turns finish their chat while Redis is away: posting must wait for it.
        release_answers(emulator, held=2)
        await wait_until(lambda: agent_answers() == 4, timeout=10)
        own_redis.start()
        assert (await bridge.submit(message(threads[0], "after"))).accepted
        await wait_until(lambda: len(adapter.sent) == 5, timeout=20)
    texts = adapter.texts()
    assert texts.count("You said: accepted just before") == 2
    assert "You said: after" in texts
    assert not any("while down" in t for t in texts)
    assert len(emulator.state.runs) == 5  # the recovered turns reconciled, not re-asked


async def test_a_message_submitted_after_redis_forgot_the_scripts_is_stored_and_answered_once(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    before = message(thread_key(1), "before the flush", message_id="evt-a")
    assert (await bridge.submit(before)).accepted
    await redis_client.script_flush()
    later = message(thread_key(2), "after the flush", message_id="evt-b")
    assert (await bridge.submit(later)).accepted
    assert not (await bridge.submit(later)).accepted
    assert len(await redis_client.lrange(keys.inbox(later.thread), 0, -1)) == 1
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 2)

        async def drained() -> bool:
            return await redis_client.xlen(keys.READY_STREAM) == 0

        await wait_until(drained)
    assert sorted(adapter.texts()) == ["You said: after the flush", "You said: before the flush"]
