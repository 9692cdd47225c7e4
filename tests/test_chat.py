"""The agent exchange: the status line (shown from the start, always cleared) and exactly one
answer per batch when an agent call's outcome is lost while its run goes on working."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.chat import WORKING_STATUS, AgentTurn, TurnFailed
from bridge.engage.client import EngageClient
from bridge.engage.models import MessageRead, UserMessage
from bridge.errors import PermanentPlatformError
from bridge.metrics import Metrics
from bridge.models import Reply, ThreadKey
from bridge.outbound import Outbound
from bridge.store import Store
from tests.fixtures_core import RecordingAdapter, core_settings, message, wait_until
from tests.fixtures_emulator import hold_answers, release_answers


def agent_turn(
    redis: aioredis.Redis, engage: EngageClient, adapter: RecordingAdapter, **settings: Any
) -> AgentTurn:
    configured = core_settings(**settings)
    metrics = Metrics()
    store = Store(redis, record_ttl_seconds=configured.thread_idle_ttl_seconds)
    outbound = Outbound(store, {adapter.name: adapter}, metrics)
    # Real sleeps: waiting for a run still working is measured in wall-clock time.
    return AgentTurn(engage, outbound, configured, metrics)


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


class PostClearingAdapter(OrderRecordingAdapter):
    """A platform whose posts clear the thread's status (Slack's assistant threads)."""

    def post_clears_status(self, thread: ThreadKey) -> bool:
        return True


async def test_where_the_post_clears_the_status_the_answer_needs_no_clearing_call(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = PostClearingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    await answer(turn, engage_client, "slow", "one moment")
    assert adapter.timeline == [
        ("status", WORKING_STATUS),
        ("status", "Thinking slowly…"),
        ("post", "You said: one moment"),
    ]


async def test_where_the_post_clears_the_status_a_turn_without_answer_still_clears_it(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = PostClearingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    with pytest.raises(TurnFailed):
        await answer(turn, engage_client, "no-such-agent", "hello")
    assert adapter.timeline == [("status", WORKING_STATUS), ("status", None)]


class RefusingPostAdapter(PostClearingAdapter):
    async def send(self, reply: Reply) -> str:
        raise PermanentPlatformError("slack chat.postMessage failed: is_archived")


async def test_where_the_post_clears_the_status_a_failed_post_still_clears_it(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RefusingPostAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    with pytest.raises(PermanentPlatformError):
        await answer(turn, engage_client, "parrot", "hello")
    assert adapter.timeline == [("status", WORKING_STATUS), ("status", None)]


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
    hold_answers(emulator)  # no answer can come before the cancel, however slow the machine
    task = asyncio.create_task(answer(turn, engage_client, "slow", "take your time"))
    await wait_until(lambda: "Thinking slowly…" in statuses(adapter))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    assert statuses(adapter) == [WORKING_STATUS, "Thinking slowly…", None]
    assert adapter.sent == []


@pytest.fixture
async def impatient_client(emulator: Any) -> AsyncIterator[EngageClient]:
    """Gives up reading an answer after 0.5 s, long before a delayed agent answers."""
    client = EngageClient(
        base_url=emulator.url,
        api_key=emulator.api_key,
        org_id=emulator.org_id,
        timeout=0.5,
        max_attempts=2,
    )
    yield client
    await client.aclose()


def agent_answers(emulator: Any, conversation_id: str) -> list[MessageRead]:
    return [m for m in emulator.state.messages(conversation_id) if m.role == "agent"]


async def test_an_agent_slower_than_the_client_timeout_is_awaited_not_asked_twice(
    redis_client: aioredis.Redis, emulator: Any, impatient_client: EngageClient
) -> None:
    hold_answers(emulator)  # the agent answers only once the first read has timed out
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, impatient_client, adapter, agent_answer_wait_seconds=10.0)
    conversation = await impatient_client.create_conversation(data={}, source="console")
    msg = message(text="slow one")
    attempts: list[int] = []

    async def on_attempt(attempt: int) -> None:
        attempts.append(attempt)
        if attempt == 2:
            release_answers(emulator)

    mark = await turn.answer(
        msg.thread, conversation.id, "parrot", [msg], "", reconcile_first=False,
        on_attempt=on_attempt,
    )  # fmt: skip
    assert attempts == [1, 2]  # the first read timed out; the second found the run's answer
    assert [r.text for r in adapter.sent] == ["You said: slow one"]
    assert len(emulator.state.runs_for(conversation.id)) == 1
    [stored] = agent_answers(emulator, conversation.id)
    assert adapter.sent[0].idempotency_key == stored.id == mark


async def test_stored_messages_no_run_works_on_are_answered_at_once(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter, agent_answer_wait_seconds=30.0)
    conversation = await engage_client.create_conversation(data={}, source="console")
    msg = message(text="stored earlier")
    # As if a crashed attempt's chat stored the messages but never started the agent.
    await engage_client.add_messages(conversation.id, [UserMessage(content="stored earlier")])

    async def on_attempt(_: int) -> None:
        return None

    started = time.monotonic()
    await turn.answer(
        msg.thread, conversation.id, "parrot", [msg], "", reconcile_first=True,
        on_attempt=on_attempt,
    )  # fmt: skip
    assert time.monotonic() - started < 5.0  # not the 30 s wait for a run
    assert [r.text for r in adapter.sent] == ["You said: stored earlier"]
    assert len(emulator.state.runs_for(conversation.id)) == 1


async def drain(engage: EngageClient, conversation_id: str) -> list[MessageRead]:
    return [m async for m in engage.chat_stream(conversation_id, [], agent="parrot")]


async def test_when_two_runs_answered_one_batch_only_the_earliest_runs_answer_is_posted(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    conversation = await engage_client.create_conversation(data={}, source="console")
    await engage_client.add_messages(conversation.id, [UserMessage(content="twice asked")])
    hold_answers(emulator)
    # Two runs on the same stored message, the second started before the first answered.
    drains = asyncio.gather(
        drain(engage_client, conversation.id), drain(engage_client, conversation.id)
    )
    await wait_until(lambda: emulator.faults.answers_held == 2)
    release_answers(emulator, held=2)
    await drains
    runs = sorted(emulator.state.runs_for(conversation.id), key=lambda r: r.created)
    answers = agent_answers(emulator, conversation.id)
    assert len(runs) == 2
    assert {a.run_id for a in answers} == {r.id for r in runs}
    [first] = [a for a in answers if a.run_id == runs[0].id]

    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    msg = message(text="twice asked")

    async def on_attempt(_: int) -> None:
        return None

    mark = await turn.answer(
        msg.thread, conversation.id, "parrot", [msg], "", reconcile_first=True,
        on_attempt=on_attempt,
    )  # fmt: skip
    assert [r.idempotency_key for r in adapter.sent] == [first.id]
    assert mark == first.id
    assert len(emulator.state.runs_for(conversation.id)) == 2  # and no third run


async def test_a_second_runs_posted_answer_wins_over_the_first_runs_late_one(
    redis_client: aioredis.Redis, emulator: Any, impatient_client: EngageClient
) -> None:
    # The first run outlasts both the read timeout and the wait, so the turn asks again and
    # posts the second run's answer; the first run answers later. A retry of the same batch
    # (a crash before the turn was committed) must not post that late answer too.
    hold_answers(emulator, runs=1)  # the first run answers only when the test lets it
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, impatient_client, adapter, agent_answer_wait_seconds=0.2)
    conversation = await impatient_client.create_conversation(data={}, source="console")
    msg = message(text="patience")
    attempts: list[int] = []

    async def on_attempt(attempt: int) -> None:
        attempts.append(attempt)

    await turn.answer(
        msg.thread, conversation.id, "parrot", [msg], "", reconcile_first=False,
        on_attempt=on_attempt,
    )  # fmt: skip
    assert attempts == [1, 2]
    [second] = agent_answers(emulator, conversation.id)  # the first run is still held
    assert [(r.text, r.idempotency_key) for r in adapter.sent] == [
        ("You said: patience", second.id)
    ]
    release_answers(emulator)
    await wait_until(lambda: len(agent_answers(emulator, conversation.id)) == 2, timeout=10)

    retry = agent_turn(redis_client, impatient_client, adapter)
    await retry.answer(
        msg.thread, conversation.id, "parrot", [msg], "", reconcile_first=True,
        on_attempt=on_attempt,
    )  # fmt: skip
    assert len(adapter.sent) == 1
    assert len(emulator.state.runs_for(conversation.id)) == 2


async def test_a_first_attempts_answer_is_posted_fresh_without_asking_the_posted_ledger(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    posted = turn.outbound._store.posted
    asked: list[str] = []
    get = posted.get

    async def counted_get(thread: ThreadKey, key: str) -> Any:
        asked.append(key)
        return await get(thread, key)

    posted.get = counted_get  # type: ignore[method-assign]
    await answer(turn, engage_client, "parrot", "hi")
    [reply] = adapter.sent
    assert reply.fresh
    assert not reply.retried
    assert asked == []  # nothing can have posted it: no round trip before the post
    assert await posted.get(reply.thread, reply.idempotency_key) == "p1"  # still recorded


async def test_a_retried_turns_answer_is_posted_as_retried_after_asking_the_posted_ledger(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    turn = agent_turn(redis_client, engage_client, adapter)
    conversation = await engage_client.create_conversation(data={}, source="console")
    msg = message(text="again")
    posted = turn.outbound._store.posted
    asked: list[str] = []
    get = posted.get

    async def counted_get(thread: ThreadKey, key: str) -> Any:
        asked.append(key)
        return await get(thread, key)

    async def on_attempt(_: int) -> None:
        return None

    posted.get = counted_get  # type: ignore[method-assign]
    await turn.answer(
        msg.thread, conversation.id, "parrot", [msg], "", reconcile_first=True,
        on_attempt=on_attempt,
    )  # fmt: skip
    [reply] = adapter.sent
    assert reply.retried
    assert not reply.fresh
    assert asked == [reply.idempotency_key]
