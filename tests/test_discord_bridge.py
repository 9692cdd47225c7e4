"""Discord end to end: real discord.py, fake Discord, real Redis, the emulator, the real runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.errors import ConfigError
from bridge.runtime import BridgeRuntime
from bridge.store import keys
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_wire import Json
from tests.fixtures_core import wait_until
from tests.fixtures_discord import discord_bridge_settings, discord_runtime


def discord_conversations(emulator: Any) -> list[Any]:
    return [c for c in emulator.state.conversations.values() if c.source == "discord"]


def contents(fake: FakeDiscord, channel_id: str) -> list[str]:
    return [m["content"] for m in fake.bot_messages(channel_id)]


async def answered(fake: FakeDiscord, channel_id: str, count: int = 1) -> list[str]:
    await wait_until(lambda: len(fake.bot_messages(channel_id)) >= count)
    return contents(fake, channel_id)


async def mention(fake: FakeDiscord, user: Json, text: str) -> Json:
    return await fake.post(fake.text_channel["id"], user, text, mention_bot=True)


async def test_a_mention_opens_a_thread_with_a_discord_conversation_and_the_answer_in_it(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("alice")
    posted = await mention(fake_discord, user, "What is a pension?")
    thread_id = posted["id"]

    assert await answered(fake_discord, thread_id) == ["You said: What is a pension?"]

    thread = fake_discord.channels[thread_id]
    assert thread["type"] == 11
    assert thread["parent_id"] == fake_discord.text_channel["id"]
    [conversation] = discord_conversations(emulator)
    guild, channel = fake_discord.guild_id, fake_discord.text_channel["id"]
    assert conversation.data["user_id"] == user["id"]
    assert conversation.data["ticket_id"] == thread_id
    assert conversation.data["workspace_id"] == guild
    assert conversation.data["channel_id"] == channel
    assert conversation.data["thread_id"] == thread_id
    assert conversation.data["thread_key"] == f"discord:{guild}:{channel}:{thread_id}"
    assert conversation.data["permalink"] == (
        f"https://discord.com/channels/{guild}/{channel}/{thread_id}"
    )


async def test_a_follow_up_in_the_thread_continues_the_same_conversation(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("alice")
    thread_id = (await mention(fake_discord, user, "first"))["id"]
    await answered(fake_discord, thread_id)

    await fake_discord.post(thread_id, user, "second, no mention needed")

    assert await answered(fake_discord, thread_id, 2) == [
        "You said: first",
        "You said: second, no mention needed",
    ]
    [conversation] = discord_conversations(emulator)
    assert [m.content for m in conversation.messages if m.role == "user"] == [
        "first",
        "second, no mention needed",
    ]


async def test_two_threads_are_two_conversations(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("alice")
    one = (await mention(fake_discord, user, "one"))["id"]
    two = (await mention(fake_discord, user, "two"))["id"]

    assert await answered(fake_discord, one) == ["You said: one"]
    assert await answered(fake_discord, two) == ["You said: two"]
    tickets = sorted(c.data["ticket_id"] for c in discord_conversations(emulator))
    assert tickets == sorted([one, two])


async def test_a_forum_post_in_a_configured_forum_is_answered_in_the_post(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    starter = await fake_discord.forum_post(fake_discord.user("carol"), "Transfers", "Can I?")

    assert await answered(fake_discord, starter["id"]) == ["You said: Can I?"]
    [conversation] = discord_conversations(emulator)
    assert conversation.data["channel_id"] == fake_discord.forum_channel["id"]
    assert conversation.data["ticket_id"] == starter["id"]


async def test_a_dm_is_one_conversation_until_reset_starts_a_new_one(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("dave")
    dm = fake_discord.dm_channel(user)["id"]

    await fake_discord.post(dm, user, "hello")
    await answered(fake_discord, dm, 1)
    await fake_discord.post(dm, user, "again")
    await answered(fake_discord, dm, 2)
    assert len(discord_conversations(emulator)) == 1

    await fake_discord.post(dm, user, "reset")
    await answered(fake_discord, dm, 3)
    await fake_discord.post(dm, user, "fresh start")
    replies = await answered(fake_discord, dm, 4)

    assert replies[0] == "You said: hello"
    assert replies[3] == "You said: fresh start"
    conversations = discord_conversations(emulator)
    assert len(conversations) == 2
    assert all(c.data["workspace_id"] == "@dm" for c in conversations)


async def test_a_6000_character_answer_arrives_in_ordered_parts_with_fences_intact(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    code = "```python\n" + "\n".join(f"line_{i:03d} = {i}" for i in range(200)) + "\n```"
    prose = "\n\n".join(f"Paragraph {i}: " + " ".join(["pension"] * 60) for i in range(8))
    text = f"{prose}\n\n{code}\n\nThe end."
    assert len(text) > 6000
    thread_id = (await mention(fake_discord, fake_discord.user("erin"), text))["id"]

    await wait_until(lambda: any("The end." in c for c in contents(fake_discord, thread_id)))

    parts = contents(fake_discord, thread_id)
    assert len(parts) >= 4
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[0].startswith("You said: Paragraph 0:")
    assert parts[-1].endswith("The end.")
    code_lines = [line for p in parts for line in p.split("\n") if line.startswith("line_")]
    assert code_lines == [f"line_{i:03d} = {i}" for i in range(200)]


async def test_agent_text_with_everyone_pings_no_one(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    thread_id = (await mention(fake_discord, fake_discord.user("f"), "@everyone @here hi"))["id"]

    assert await answered(fake_discord, thread_id) == ["You said: @everyone @here hi"]
    [call] = fake_discord.calls_to("POST", rf"/channels/{thread_id}/messages")
    assert call.json["allowed_mentions"] == {"parse": []}


async def test_a_429_delays_the_answer_but_loses_nothing(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    fake_discord.rate_limit("POST", r"/channels/\d+/messages", times=2, retry_after=0.3)

    thread_id = (await mention(fake_discord, fake_discord.user("g"), "limited"))["id"]

    assert await answered(fake_discord, thread_id) == ["You said: limited"]
    statuses = [c.status for c in fake_discord.calls_to("POST", rf"/channels/{thread_id}/messages")]
    assert statuses == [429, 429, 200]


async def test_an_answer_whose_post_is_cut_short_is_posted_once_without_a_crash(
    discord_bridge: BridgeRuntime,
    fake_discord: FakeDiscord,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The answer's POST creates the message, but its 200 arrives truncated (discord.py raises
    # ValueError): the outcome is unknown, so the adapter repeats it with the same nonce.
    fake_discord.break_next("POST", r"/channels/\d+/messages", handled=True)

    thread_id = (await mention(fake_discord, fake_discord.user("h"), "cut"))["id"]

    async def settled() -> bool:
        return await discord_bridge.bridge.queue_depth() == 0

    posts = rf"/channels/{thread_id}/messages"
    await wait_until(lambda: len(fake_discord.calls_to("POST", posts)) >= 2)
    await wait_until(settled)
    assert [c.status for c in fake_discord.calls_to("POST", posts)] == [200, 200]
    assert contents(fake_discord, thread_id) == ["You said: cut"]
    assert "turn crashed" not in caplog.text
    assert not await redis_client.hlen(keys.DEAD_LETTERS)


async def test_a_dropped_gateway_resumes_and_no_message_is_answered_twice(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    user = fake_discord.user("h")
    thread_id = (await mention(fake_discord, user, "before the drop"))["id"]
    await answered(fake_discord, thread_id)
    # Replay more than was missed: events the client had already seen come again.
    fake_discord.gateway.replay_overlap = 10

    await fake_discord.gateway.drop()
    await fake_discord.post(thread_id, user, "during the drop")
    await wait_until(lambda: fake_discord.gateway.resumes == 1)

    assert await answered(fake_discord, thread_id, 2) == [
        "You said: before the drop",
        "You said: during the drop",
    ]
    await fake_discord.post(thread_id, user, "after")
    assert (await answered(fake_discord, thread_id, 3))[2] == "You said: after"
    assert len(contents(fake_discord, thread_id)) == 3
    [conversation] = discord_conversations(emulator)
    assert [m.content for m in conversation.messages if m.role == "user"] == [
        "before the drop",
        "during the drop",
        "after",
    ]


async def test_a_restarted_bridge_keeps_the_thread_to_conversation_mapping(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    user = fake_discord.user("i")
    # A restart within Discord's 5 s identify window costs discord.py a 5 s back-off (op 9);
    # that rule has its own test in test_discord_fake.py.
    fake_discord.gateway.identify_window = 0
    async with discord_runtime(settings, redis_client, emulator):
        thread_id = (await mention(fake_discord, user, "remember me"))["id"]
        await answered(fake_discord, thread_id)

    async with discord_runtime(settings, redis_client, emulator):
        await fake_discord.post(thread_id, user, "still there?")
        replies = await answered(fake_discord, thread_id, 2)

    assert replies == ["You said: remember me", "You said: still there?"]
    [conversation] = discord_conversations(emulator)
    assert [m.content for m in conversation.messages if m.role == "user"] == [
        "remember me",
        "still there?",
    ]
    assert fake_discord.gateway.identifies == 2


async def test_a_missing_message_content_intent_fails_start_up_with_what_to_enable(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    fake_discord.gateway.enabled_privileged_intents = 0
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)

    with pytest.raises(ConfigError, match="MESSAGE CONTENT INTENT") as failure:
        async with discord_runtime(settings, redis_client, emulator):
            pass

    assert "Privileged Gateway Intents" in str(failure.value)


async def test_a_reply_into_a_locked_thread_is_dead_lettered_not_retried_forever(
    discord_bridge: BridgeRuntime,
    fake_discord: FakeDiscord,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    moderator = fake_discord.user("mod")
    thread_id = (await mention(fake_discord, moderator, "open"))["id"]
    await answered(fake_discord, thread_id)
    await fake_discord.set_thread_state(thread_id, archived=True, locked=True)

    await fake_discord.post(thread_id, moderator, "a moderator may still post here")

    async def dead_lettered() -> bool:
        return bool(await redis_client.hlen(keys.DEAD_LETTERS))

    def refused_posts() -> list[int]:
        posts = fake_discord.calls_to("POST", rf"/channels/{thread_id}/messages")
        return [c.status for c in posts if c.status == 403]

    async def settled() -> bool:
        return await discord_bridge.bridge.queue_depth() == 0

    # The batch is parked before its apology is tried: wait for both refusals, the letter and
    # an idle queue, then check that no third attempt followed.
    await wait_until(lambda: len(refused_posts()) >= 2)
    await wait_until(dead_lettered)
    await wait_until(settled)
    assert contents(fake_discord, thread_id) == ["You said: open"]
    assert "is locked" in caplog.text
    assert len(refused_posts()) == 2  # the answer once, the apology once
