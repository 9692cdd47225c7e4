"""The agent exchange's status line: shown from the start of every call, always cleared."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.chat import WORKING_STATUS, AgentTurn, TurnFailed
from bridge.engage.client import EngageClient
from bridge.metrics import Metrics
from bridge.models import Reply, ThreadKey
from bridge.outbound import Outbound
from tests.fixtures_core import RecordingAdapter, core_settings, message, no_sleep, wait_until


def agent_turn(redis: aioredis.Redis, engage: EngageClient, adapter: RecordingAdapter) -> AgentTurn:
    settings = core_settings()
    metrics = Metrics()
    outbound = Outbound(redis, {adapter.name: adapter}, settings, metrics, sleep=no_sleep)
    return AgentTurn(engage, outbound, settings, metrics, sleep=no_sleep)


async def answer(turn: AgentTurn, engage: EngageClient, agent: str, text: str) -> str:
    conversation = await engage.create_conversation(data={}, source="console")
    msg = message(text=text)

    async def on_attempt(_: int) -> None:
        return None

    return await turn.answer(
        msg.thread,
        conversation.id,
        agent,
        [msg],
        "",
        reconcile_first=False,
        on_attempt=on_attempt,
    )


def statuses(adapter: RecordingAdapter) -> list[str | None]:
    return [status for _, status in adapter.statuses]


class OrderRecordingAdapter(RecordingAdapter):
    """Keeps statuses and posts in one timeline."""

    def __init__(self) -> None:
        super().__init__()
        self.timeline: list[tuple[str, str | None]] = []

    async def send(self, reply: Reply) -> str:
        self.timeline.append(("post", reply.text))
        return await super().send(reply)

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        self.timeline.append(("status", status))
        await super().set_status(thread, status)


async def test_the_status_is_cleared_before_the_answer_is_posted(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = OrderRecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    await answer(turn, engage_client, "slow", "one moment")
    assert adapter.timeline == [
        ("status", WORKING_STATUS),
        ("status", "Thinking slowly…"),
        ("status", None),
        ("post", "You said: one moment"),
    ]


async def test_an_agent_that_streams_no_status_still_shows_working_then_clears(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    await answer(agent_turn(redis_client, engage_client, adapter), engage_client, "parrot", "hi")
    assert adapter.texts() == ["You said: hi"]
    assert statuses(adapter) == [WORKING_STATUS, None]


async def test_streamed_status_texts_replace_the_working_status(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    await answer(turn, engage_client, "pensions-questions-latest", "When can I retire?")
    assert statuses(adapter) == [
        WORKING_STATUS,
        "Reading your question…",
        "Looking up pension rules…",
        None,
    ]


async def test_status_is_cleared_when_the_agent_call_fails(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    with pytest.raises(TurnFailed):
        await answer(turn, engage_client, "no-such-agent", "hello")
    assert statuses(adapter) == [WORKING_STATUS, None]


async def test_status_is_cleared_when_the_turn_is_cancelled(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    task = asyncio.create_task(answer(turn, engage_client, "slow", "take your time"))
    await wait_until(lambda: "Thinking slowly…" in statuses(adapter))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    assert statuses(adapter) == [WORKING_STATUS, "Thinking slowly…", None]
    assert adapter.sent == []
