"""Threads never break for good: a conversation gone upstream is replaced, reset keeps the bot."""

from __future__ import annotations

from typing import Any

import httpx
import redis.asyncio as aioredis

from bridge.core import GONE_NOTE
from bridge.engage.client import EngageClient
from bridge.models import ReplyKind
from bridge.turn import APOLOGY, RECOVERED
from tests.fixtures_core import (
    RecordingAdapter,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)


def users(emulator: Any, cid: str) -> list[str]:
    return [m.content for m in emulator.state.messages(cid) if m.role == "user"]


async def test_a_deleted_conversation_is_replaced_with_one_notice_and_no_dead_letter(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    emulator_http: httpx.AsyncClient,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("gone")
    async with running(bridge):
        await bridge.submit(message(thread, "first"))
        await wait_until(lambda: len(adapter.sent) == 1)
        old = await bridge.threads.get(thread)
        assert old is not None
        response = await emulator_http.delete(f"/_emulator/conversations/{old.conversation_id}")
        assert response.status_code == 200
        await bridge.submit(message(thread, "second"))
        await bridge.submit(message(thread, "third"))
        await wait_until(lambda: any("third" in t for t in adapter.texts()))
        await bridge.submit(message(thread, "fourth"))
        await wait_until(
            lambda: len(adapter.sent) >= 4 and adapter.sent[-1].text.endswith("fourth")
        )
    new = await bridge.threads.get(thread)
    assert new is not None
    assert new.conversation_id != old.conversation_id
    assert new.previous_conversation_id == old.conversation_id
    notices = [r.text for r in adapter.sent if r.kind is ReplyKind.NOTICE]
    assert notices == [RECOVERED]
    assert APOLOGY not in adapter.texts()
    assert await bridge.dead_letters.list() == []
    conversation = emulator.state.conversations[new.conversation_id]
    assert conversation.source == "console"
    assert conversation.data["previous_conversation_id"] == old.conversation_id
    assert conversation.data["thread_key"] == str(thread)
    assert "second" in " ".join(users(emulator, new.conversation_id))
    assert users(emulator, new.conversation_id)[-1] == "fourth"


async def test_a_dead_letter_of_a_gone_conversation_replays_into_a_new_one(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    emulator_http: httpx.AsyncClient,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("replay")
    async with running(bridge):
        await bridge.submit(message(thread, "hello"))
        await wait_until(lambda: len(adapter.sent) == 1)
        old = await bridge.threads.get(thread)
        assert old is not None
        await emulator_http.delete(f"/_emulator/conversations/{old.conversation_id}")
        # A letter as the bridge before the recovery rule parked it (404 -> apology -> letter).
        lost = message(thread, "are you still there?")
        assert await bridge.dead_letters.store("t-404", str(thread), (lost,), "NotFound: 404")
        assert await bridge.dead_letters.replay("t-404") is not None
        await wait_until(lambda: "You said: are you still there?" in adapter.texts())
    assert adapter.texts().count(RECOVERED) == 1
    assert APOLOGY not in adapter.texts()
    assert await bridge.dead_letters.list() == []


async def test_an_unknown_agent_404_is_not_mistaken_for_a_gone_conversation(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("agent404")
    async with running(bridge):
        await bridge.submit(message(thread, "hi"))
        await wait_until(lambda: len(adapter.sent) == 1)
        record = await bridge.threads.get(thread)
        assert record is not None
        await bridge.threads.update(record, agent="no-such-agent")
        await bridge.submit(message(thread, "again"))
        await wait_until(lambda: len(adapter.sent) == 2)
    assert adapter.sent[1].text == APOLOGY
    [letter] = await bridge.dead_letters.list()
    assert "NotFound" in letter.error
    after = await bridge.threads.get(thread)
    assert after is not None
    assert after.conversation_id == record.conversation_id
    assert len(emulator.state.conversations) == 1


async def test_a_human_thread_whose_conversation_is_gone_keeps_recording(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    emulator_http: httpx.AsyncClient,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("human")
    async with running(bridge):
        await bridge.submit(message(thread, "hi"))
        await wait_until(lambda: len(adapter.sent) == 1)
        await bridge.submit(message(thread, "handoff"))
        await wait_until(lambda: len(adapter.sent) == 2)

        async def handed_over() -> bool:
            # The hand-off notice may be posted a moment before the record says so.
            record = await bridge.threads.get(thread)
            return record is not None and record.status == "human"

        await wait_until(handed_over)
        old = await bridge.threads.get(thread)
        assert old is not None
        await emulator_http.delete(f"/_emulator/conversations/{old.conversation_id}")
        await bridge.submit(message(thread, "for the person"))
        await wait_until(lambda: RECOVERED in adapter.texts())

        async def recorded() -> bool:
            new = await bridge.threads.get(thread)
            return new is not None and users(emulator, new.conversation_id) == ["for the person"]

        await wait_until(recorded)
    new = await bridge.threads.get(thread)
    assert new is not None
    assert new.status == "human"
    assert emulator.state.conversations[new.conversation_id].data["status"] == "human"
    assert not any(r.kind is ReplyKind.AGENT for r in adapter.sent[2:])


async def test_reset_keeps_the_bot_in_the_thread_for_follow_ups_without_a_mention(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("reset")

    def in_channel(text: str, *, mention: bool = False) -> Any:
        return message(thread, text, is_dm=False, mentions_bot=mention)

    async with running(bridge):
        await bridge.submit(in_channel("<@BOT> hello", mention=True))
        await wait_until(lambda: len(adapter.sent) == 1)
        first = await bridge.threads.get(thread)
        assert first is not None
        await bridge.submit(in_channel("<@BOT> reset", mention=True))
        await wait_until(lambda: len(adapter.sent) == 2)
        assert adapter.sent[1].text == "Starting a new conversation."
        result = await bridge.submit(in_channel("and now without a mention"))
        assert result.accepted, result
        await wait_until(lambda: len(adapter.sent) == 3)
    assert adapter.sent[2].text == "You said: and now without a mention"
    second = await bridge.threads.get(thread)
    assert second is not None
    assert second.conversation_id != first.conversation_id
    assert second.previous_conversation_id == first.conversation_id
    assert users(emulator, second.conversation_id) == ["and now without a mention"]


async def test_history_of_a_gone_conversation_says_what_happens_next(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    emulator_http: httpx.AsyncClient,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("history")
    assert await bridge.history(thread) is None
    async with running(bridge):
        await bridge.submit(message(thread, "hi"))
        await wait_until(lambda: len(adapter.sent) == 1)
    found = await bridge.history(thread)
    assert found is not None
    assert [m.content for m in found.messages] == ["hi", "You said: hi"]
    assert found.note == ""
    await emulator_http.delete(f"/_emulator/conversations/{found.record.conversation_id}")
    gone = await bridge.history(thread)
    assert gone is not None
    assert gone.messages == []
    assert gone.note == GONE_NOTE
