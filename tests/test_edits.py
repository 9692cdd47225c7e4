"""bridge.edits against a real Redis: what may still change in a thread's inbox, atomically, and
what the agent gets when a turn is held at each point (the emulator's hold, a held BEGIN)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.codec import decode_message, encode_message
from bridge.config import Settings
from bridge.core import Bridge
from bridge.edits import NOTE_COMMAND, Revisions
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.store import Hold, keys
from bridge.store.threads import ThreadState
from bridge.turn import plan
from tests.fixtures_core import (
    NewCore,
    RecordingAdapter,
    core_settings,
    message,
    running,
    thread_key,
    wait_until,
)
from tests.fixtures_emulator import hold_chat, release_chat

THREAD = ThreadKey("discord", "g1", "c1", "t1")


def msg(message_id: str, text: str = "hi") -> InboundMessage:
    return InboundMessage(THREAD, message_id, "u1", text, datetime.now(UTC), mentions_bot=True)


class Collecting:
    def __init__(self) -> None:
        self.submitted: list[InboundMessage] = []

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.submitted.append(message)
        return SubmitResult(True, "accepted")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return True


async def inbox_texts(redis: aioredis.Redis) -> list[str]:
    return [decode_message(raw).text for raw in await redis.lrange(keys.inbox(THREAD), 0, -1)]


async def queue(redis: aioredis.Redis, *messages: InboundMessage) -> None:
    for m in messages:
        await redis.rpush(keys.inbox(THREAD), encode_message(m))
        await redis.set(keys.seen(THREAD, m.message_id), "1")


async def test_with_no_turn_running_a_pending_message_is_edited_in_place(
    redis_client: aioredis.Redis,
) -> None:
    await queue(redis_client, msg("a", "one"), msg("b", "two"))
    inbox = Collecting()

    outcome = await Revisions(redis_client).edited(inbox, msg("a", "ONE"), "t1")

    assert outcome == "replaced before its turn"
    assert await inbox_texts(redis_client) == ["ONE", "two"]
    assert inbox.submitted == []


async def test_the_batch_a_turn_journaled_is_never_touched_but_what_follows_it_is(
    redis_client: aioredis.Redis,
) -> None:
    await queue(redis_client, msg("a", "one"), msg("b", "two"), msg("c", "three"))
    await redis_client.set(keys.lease(THREAD), "token")
    await redis_client.hset(keys.turn(THREAD), "ids", json.dumps(["a", "b"]))
    inbox = Collecting()
    revisions = Revisions(redis_client)

    assert (await revisions.edited(inbox, msg("b", "TWO"), "t1")).startswith("follow-up")
    assert await revisions.deleted(inbox, THREAD, "c") == "withdrawn before its turn"

    assert await inbox_texts(redis_client) == ["one", "two"]
    [follow_up] = inbox.submitted  # the withdrawn message needs no note
    assert (follow_up.message_id, follow_up.text) == ("b:edit:t1", "edited: TWO")


async def test_while_the_lease_is_held_between_two_turns_a_waiting_message_is_still_pending(
    redis_client: aioredis.Redis,
) -> None:
    # A commit that kept the lease deleted the journal; the holder's next BEGIN reads the inbox.
    await queue(redis_client, msg("a", "one"), msg("b", "two"))
    await redis_client.set(keys.lease(THREAD), "token")
    inbox = Collecting()
    revisions = Revisions(redis_client)

    assert await revisions.edited(inbox, msg("a", "ONE"), "t1") == "replaced before its turn"
    assert await revisions.deleted(inbox, THREAD, "b") == "withdrawn before its turn"

    assert await inbox_texts(redis_client) == ["ONE"]
    assert inbox.submitted == []


async def test_an_edit_of_a_message_never_accepted_is_submitted_as_itself(
    redis_client: aioredis.Redis,
) -> None:
    inbox = Collecting()
    revisions = Revisions(redis_client, follow_up_edits=False)

    await revisions.edited(inbox, msg("x", "now with a mention"), "t1")
    outcome = await revisions.deleted(inbox, THREAD, "y")

    assert [m.message_id for m in inbox.submitted] == ["x"]
    assert outcome == "never accepted: nothing to do"


async def test_edits_after_the_turn_can_be_switched_off(redis_client: aioredis.Redis) -> None:
    await redis_client.set(keys.seen(THREAD, "a"), "1")  # answered and gone from the inbox
    inbox = Collecting()

    outcome = await Revisions(redis_client, follow_up_edits=False).edited(inbox, msg("a"), "t1")

    assert outcome == "edit after the turn ignored (policy)"
    assert inbox.submitted == []


def test_a_note_is_its_own_step_and_never_joins_the_messages_the_agent_answers() -> None:
    staff = Settings(_env_file=None).file.staff
    note = replace(msg("n", "(deleted)"), command=NOTE_COMMAND)

    head_note = plan([note, msg("a")], None, staff)
    after_messages = plan([msg("a"), msg("b"), note, msg("c")], None, staff)

    assert (head_note.kind, [m.message_id for m in head_note.messages]) == ("note", ["n"])
    assert after_messages.kind == "answer"
    assert [m.message_id for m in after_messages.messages] == ["a", "b"]


def user_texts(emulator: Any, role: str = "user") -> list[str]:
    return [
        m.content
        for c in emulator.state.conversations.values()
        for m in c.messages
        if m.role == role
    ]


class BetweenTurns:
    """Holds the lease holder after a commit that kept the lease, before its next BEGIN: the
    lease is held and no journal exists (the window edits once counted as too late)."""

    def __init__(self, threads: ThreadState) -> None:
        self._begin = threads.begin
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    async def begin(self, hold: Hold, ms: int, *, acquire: bool) -> Any:
        if not acquire:
            self.reached.set()
            await self.go_on.wait()
        return await self._begin(hold, ms, acquire=acquire)


@pytest.fixture
def bridge(new_core: NewCore, adapter: RecordingAdapter) -> Bridge:
    # A lease that outlives a late heartbeat on a loaded machine: held turns keep their lease.
    settings = core_settings(lease_seconds=5.0, claim_idle_seconds=10.0)
    return new_core(settings, adapter=adapter)[0]


@pytest.fixture
def held_bridge(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> tuple[Bridge, BetweenTurns]:
    between = BetweenTurns(bridge.store.threads)
    monkeypatch.setattr(bridge.store.threads, "begin", between.begin)
    return bridge, between


@asynccontextmanager
async def held_between_turns(
    held_bridge: tuple[Bridge, BetweenTurns], emulator: Any, redis: aioredis.Redis, name: str
) -> AsyncIterator[InboundMessage]:
    """The workers run; "first" is answered while "secnd question" arrives, then the worker is
    held between that turn's commit and the next BEGIN: the waiting message."""
    bridge, between = held_bridge
    thread = thread_key(name)
    async with running(bridge):
        hold_chat(emulator)
        await bridge.submit(message(thread, "first"))
        await wait_until(lambda: emulator.faults.held == 1)
        waiting = message(thread, "secnd question")
        await bridge.submit(waiting)
        release_chat(emulator)
        await asyncio.wait_for(between.reached.wait(), timeout=10)
        assert await redis.exists(keys.lease(thread))  # still the holder's...
        assert not await redis.exists(keys.turn(thread))  # ...with no journal
        yield waiting


async def test_an_edit_between_two_turns_of_one_holder_reaches_the_agent_as_the_text(
    held_bridge: tuple[Bridge, BetweenTurns],
    emulator: Any,
    redis_client: aioredis.Redis,
    adapter: RecordingAdapter,
) -> None:
    bridge, between = held_bridge
    async with held_between_turns(held_bridge, emulator, redis_client, "edit-between") as waiting:
        edit = replace(waiting, text="second question")
        outcome = await Revisions(redis_client).edited(bridge, edit, "e1")
        between.go_on.set()
        await wait_until(lambda: len(adapter.sent) == 2)

    assert outcome == "replaced before its turn"
    assert user_texts(emulator) == ["first", "second question"]
    assert adapter.texts() == ["You said: first", "You said: second question"]


async def test_a_delete_between_two_turns_of_one_holder_withdraws_the_message(
    held_bridge: tuple[Bridge, BetweenTurns],
    emulator: Any,
    redis_client: aioredis.Redis,
    adapter: RecordingAdapter,
) -> None:
    bridge, between = held_bridge
    async with held_between_turns(held_bridge, emulator, redis_client, "delete-between") as waiting:
        thread = waiting.thread
        outcome = await Revisions(redis_client).deleted(bridge, thread, waiting.message_id)
        between.go_on.set()
        # The next BEGIN finds nothing pending and lets go.
        await wait_until(lambda: _released(redis_client, thread))

    assert outcome == "withdrawn before its turn"
    assert user_texts(emulator) == ["first"]
    assert user_texts(emulator, "info") == []
    assert adapter.texts() == ["You said: first"]


async def _released(redis: aioredis.Redis, thread: ThreadKey) -> bool:
    return not await redis.exists(keys.lease(thread), keys.inbox(thread))


@asynccontextmanager
async def first_held_before_the_agent(
    bridge: Bridge, emulator: Any, name: str
) -> AsyncIterator[InboundMessage]:
    """The workers run while a thread's "first" message is in its turn, held before the agent."""
    first = message(thread_key(name), "first")
    hold_chat(emulator)
    async with running(bridge):
        await bridge.submit(first)
        await wait_until(lambda: emulator.faults.held == 1)  # journaled, not at the agent yet
        yield first


async def test_an_edit_while_its_turn_is_held_before_the_agent_is_a_follow_up_after_it(
    bridge: Bridge,
    emulator: Any,
    redis_client: aioredis.Redis,
    adapter: RecordingAdapter,
) -> None:
    async with first_held_before_the_agent(bridge, emulator, "edit-taken") as first:
        outcome = await Revisions(redis_client).edited(bridge, replace(first, text="FIRST"), "e1")
        release_chat(emulator)
        await wait_until(lambda: len(adapter.sent) == 2)

    assert outcome.startswith("follow-up: ")
    assert user_texts(emulator) == ["first", "edited: FIRST"]
    assert adapter.texts() == ["You said: first", "You said: edited: FIRST"]


async def test_a_delete_while_its_turn_is_held_before_the_agent_is_noted_after_it(
    bridge: Bridge,
    emulator: Any,
    redis_client: aioredis.Redis,
    adapter: RecordingAdapter,
) -> None:
    async with first_held_before_the_agent(bridge, emulator, "delete-taken") as first:
        thread = first.thread
        outcome = await Revisions(redis_client).deleted(bridge, thread, first.message_id)
        release_chat(emulator)
        await wait_until(lambda: _released(redis_client, thread))

    assert outcome.startswith("noted: ")
    assert user_texts(emulator) == ["first"]
    note = f"(The earlier message {first.message_id} was deleted from the chat.)"
    assert user_texts(emulator, "info") == [note]
    assert adapter.texts() == ["You said: first"]  # the note gets no answer
