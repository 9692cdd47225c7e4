"""Edits and deletes on Discord: before a message's turn it is changed or withdrawn; after, an
edit is a follow-up the agent answers and a delete a note in the history (real discord.py, the
fake's MESSAGE_UPDATE/MESSAGE_DELETE, real Redis, the emulator, the real runtime)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.codec import decode_message
from bridge.models import ThreadKey
from bridge.store import keys
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_wire import Json
from tests.fixtures_core import wait_until
from tests.fixtures_discord import discord_bridge_settings, discord_runtime
from tests.fixtures_emulator import hold_chat, release_chat


@pytest.fixture
async def bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> AsyncIterator[None]:
    # A lease that outlives a late heartbeat on a loaded machine: the held turn keeps its lease.
    settings = discord_bridge_settings(
        tmp_path, emulator, fake_discord, lease_seconds=5.0, claim_idle_seconds=10.0
    )
    async with discord_runtime(settings, redis_client, emulator):
        yield


def answers(fake: FakeDiscord, thread_id: str) -> list[str]:
    return [m["content"] for m in fake.bot_messages(thread_id)]


def texts(emulator: Any, role: str = "user") -> list[str]:
    return [
        m.content
        for c in emulator.state.conversations.values()
        for m in c.messages
        if m.role == role
    ]


async def opened(fake: FakeDiscord, user: Json, text: str) -> Json:
    asked = await fake.post(fake.text_channel["id"], user, text, mention_bot=True)
    await wait_until(lambda: len(answers(fake, asked["id"])) == 1)
    return asked


def key_of(fake: FakeDiscord, root: Json) -> ThreadKey:
    return ThreadKey("discord", fake.guild_id, fake.text_channel["id"], root["id"])


async def while_a_turn_is_held(
    fake: FakeDiscord, redis: aioredis.Redis, emulator: Any, root: Json, user: Json
) -> Json:
    """Posts a message in the thread while the turn on an earlier one is held before the agent
    (its journal written, the lease held, its chat call waiting in the emulator): the new message
    waits in the inbox for the next turn, however slow the machine, until `release_chat`."""
    hold_chat(emulator)
    thread = key_of(fake, root)
    await fake.post(root["id"], user, "slow one")
    await wait_until(lambda: emulator.faults.held == 1)
    waiting = await fake.post(root["id"], user, "secnd question")
    await wait_until(lambda: _queued(redis, thread, 2))
    return waiting


async def _queued(redis: aioredis.Redis, thread: ThreadKey, count: int) -> bool:
    return int(await redis.llen(keys.inbox(thread))) == count


async def _waiting_text(redis: aioredis.Redis, thread: ThreadKey, text: str) -> bool:
    """The edit replaced the message while it waited (before its turn)."""
    raw = await redis.lrange(keys.inbox(thread), 0, -1)
    return text in [decode_message(r).text for r in raw]


async def test_an_edit_before_the_turn_reaches_the_agent_instead_of_the_first_text(
    bridge: None, fake_discord: FakeDiscord, redis_client: aioredis.Redis, emulator: Any
) -> None:
    user = fake_discord.user("ann")
    root = await opened(fake_discord, user, "hello")
    waiting = await while_a_turn_is_held(fake_discord, redis_client, emulator, root, user)

    await fake_discord.edit(waiting, "second question")
    thread = key_of(fake_discord, root)
    await wait_until(lambda: _waiting_text(redis_client, thread, "second question"))
    release_chat(emulator)
    await wait_until(lambda: len(answers(fake_discord, root["id"])) == 3, timeout=15)

    assert texts(emulator) == ["hello", "slow one", "second question"]
    assert answers(fake_discord, root["id"])[-1] == "You said: second question"


async def test_an_edit_after_the_answer_is_a_follow_up_the_agent_answers(
    bridge: None, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("bob")
    root = await opened(fake_discord, user, "is 55 the age?")

    await fake_discord.edit(root, "is 57 the age?")
    await wait_until(lambda: len(answers(fake_discord, root["id"])) == 2)

    assert answers(fake_discord, root["id"]) == [
        "You said: is 55 the age?",
        "You said: edited: is 57 the age?",
    ]
    assert texts(emulator) == ["is 55 the age?", "edited: is 57 the age?"]


async def test_a_delete_before_the_turn_withdraws_the_message(
    bridge: None, fake_discord: FakeDiscord, redis_client: aioredis.Redis, emulator: Any
) -> None:
    user = fake_discord.user("cy")
    root = await opened(fake_discord, user, "hello")
    waiting = await while_a_turn_is_held(fake_discord, redis_client, emulator, root, user)

    await fake_discord.delete(waiting)
    await wait_until(lambda: _queued(redis_client, key_of(fake_discord, root), 1))  # withdrawn
    release_chat(emulator)
    await wait_until(lambda: len(answers(fake_discord, root["id"])) == 2, timeout=15)
    await wait_until(lambda: _queued(redis_client, key_of(fake_discord, root), 0))

    assert texts(emulator) == ["hello", "slow one"]
    assert answers(fake_discord, root["id"]) == ["You said: hello", "You said: slow one"]


async def test_a_delete_after_the_answer_is_noted_in_the_history_without_an_answer(
    bridge: None, fake_discord: FakeDiscord, redis_client: aioredis.Redis, emulator: Any
) -> None:
    user = fake_discord.user("dee")
    root = await opened(fake_discord, user, "hello")
    second = await fake_discord.post(root["id"], user, "my NI number is QQ123456C")
    await wait_until(lambda: len(answers(fake_discord, root["id"])) == 2)

    await fake_discord.delete(second)
    note = f"(The earlier message {second['id']} was deleted from the chat.)"
    await wait_until(lambda: note in texts(emulator, "info"))
    await wait_until(lambda: _queued(redis_client, key_of(fake_discord, root), 0))

    assert len(answers(fake_discord, root["id"])) == 2  # no answer to the note
    assert "my NI number is QQ123456C" not in note  # the note does not repeat the content


async def test_deleting_the_threads_root_keeps_the_thread_working(
    bridge: None, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("eve")
    root = await opened(fake_discord, user, "hello")

    await fake_discord.delete(root)
    await wait_until(lambda: any("deleted" in t for t in texts(emulator, "info")))
    await fake_discord.post(root["id"], user, "still there?")
    await wait_until(lambda: len(answers(fake_discord, root["id"])) == 2)

    assert answers(fake_discord, root["id"])[-1] == "You said: still there?"
    assert len({c.id for c in emulator.state.conversations.values()}) == 1


async def test_a_moderators_bulk_delete_notes_each_answered_message(
    bridge: None, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("fay")
    root = await opened(fake_discord, user, "hello")
    second = await fake_discord.post(root["id"], user, "spam one")
    third = await fake_discord.post(root["id"], user, "spam two")
    # Both answered: one after the other, or in one turn ("You said: spam one\nspam two") when
    # both were waiting when the turn began; which depends on the machine's speed.
    await wait_until(lambda: any(a.endswith("spam two") for a in answers(fake_discord, root["id"])))

    await fake_discord.delete_bulk([second, third])

    for gone in (second, third):
        note = f"(The earlier message {gone['id']} was deleted from the chat.)"
        await wait_until(lambda note=note: note in texts(emulator, "info"))
