"""bridge.edits against a real Redis: what may still change in a thread's inbox, atomically."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import redis.asyncio as aioredis

from bridge.codec import decode_message, encode_message
from bridge.config import Settings
from bridge.edits import NOTE_COMMAND, Revisions
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.store import keys
from bridge.turn import plan

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


async def test_while_the_lease_is_held_without_a_journal_every_entry_counts_as_taken(
    redis_client: aioredis.Redis,
) -> None:
    await queue(redis_client, msg("a", "one"))
    await redis_client.set(keys.lease(THREAD), "token")
    inbox = Collecting()

    outcome = await Revisions(redis_client).deleted(inbox, THREAD, "a")

    assert outcome.startswith("noted")
    assert await inbox_texts(redis_client) == ["one"]
    [note] = inbox.submitted
    assert note.command == NOTE_COMMAND
    assert "a" in note.text


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
