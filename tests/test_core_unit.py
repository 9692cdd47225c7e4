"""Pipeline tests on real Redis with an in-memory Engage stand-in (fast; logic only)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from bridge.engage.errors import ChatOutcomeUnknown
from tests.fixtures_core import (
    FakeEngage,
    RecordingAdapter,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)


async def test_a_message_is_answered_in_its_thread(
    redis_client: aioredis.Redis, adapter: RecordingAdapter
) -> None:
    engage = FakeEngage()
    bridge = make_bridge(redis_client, engage, adapter)
    result = await bridge.submit(message(text="hi"))
    assert result.accepted
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
        assert adapter.texts() == ["You said: hi"]

        async def drained() -> bool:
            return await redis_client.xlen("bridge:ready") == 0

        await wait_until(drained)
    assert await redis_client.llen("{console:W1:C1:t1}:inbox") == 0


async def test_ambiguous_chat_failure_is_reconciled_without_resending(
    redis_client: aioredis.Redis, adapter: RecordingAdapter
) -> None:
    engage = FakeEngage()
    engage.fail_after_store.append(ChatOutcomeUnknown("read timeout"))
    bridge = make_bridge(redis_client, engage, adapter)
    await bridge.submit(message(text="once"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
    [(cid, first)] = engage.chat_calls[:1]
    assert first == ["once"]
    assert [c[1] for c in engage.chat_calls] == [["once"], []]
    users = [m.content for m in engage.messages[cid] if m.role == "user"]
    assert users == ["once"]


async def test_outage_ends_in_apology_and_dead_letter_then_replay_answers(
    redis_client: aioredis.Redis, adapter: RecordingAdapter
) -> None:
    engage = FakeEngage()
    # What the client raises for a chat answered 503: it may have been stored (bridge.engage).
    engage.fail_chat.extend(ChatOutcomeUnknown("503 down") for _ in range(3))
    bridge = make_bridge(redis_client, engage, adapter)
    await bridge.submit(message(text="help"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
        assert "Sorry" in adapter.sent[0].text
        [letter] = await bridge.dead_letters.list()
        assert letter.messages[0].text == "help"
        await bridge.dead_letters.replay(letter.turn_id)
        await wait_until(lambda: len(adapter.sent) == 2)
    assert adapter.sent[1].text == "You said: help"
    assert await bridge.dead_letters.list() == []


class AllAtOnce(FakeEngage):
    """Every chat waits until `width` chats are in flight: threads handled one after another
    never get there, so the test fails on its wait instead of on a clock."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.in_flight = 0
        self.peak = 0
        self._all_in = asyncio.Event()

    async def chat_stream(  # type: ignore[no-untyped-def]
        self, cid: str, msgs: Any, *, agent: str, return_inputs: bool = False
    ):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.width:
            self._all_in.set()
        try:
            await self._all_in.wait()
            async for item in super().chat_stream(
                cid, msgs, agent=agent, return_inputs=return_inputs
            ):
                yield item
        finally:
            self.in_flight -= 1


async def test_threads_run_in_parallel(
    redis_client: aioredis.Redis, adapter: RecordingAdapter
) -> None:
    engage = AllAtOnce(width=8)
    bridge = make_bridge(redis_client, engage, adapter)
    for n in range(8):
        await bridge.submit(message(thread_key(n), text=f"q{n}"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 8)
    assert engage.peak == 8  # all eight chats were in flight at once
