"""Gap recovery: what Discord dispatched while no listener held a shard is read back through
REST by the next process (real discord.py, the fake Discord, real Redis)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from adapters.discord.catchup import (
    MARGIN_MS,
    MAX_CHANNELS,
    WINDOW_SECONDS,
    Channel,
    channels_to_read,
    dm_channels_to_read,
    snowflake_at,
    upto_key,
)
from adapters.discord.events import ChannelFacts, ChannelKind
from bridge.models import InboundMessage, SubmitResult
from bridge.store import keys
from tests.fakes.discord import FakeDiscord
from tests.fixtures_core import wait_until
from tests.fixtures_discord import (
    RecordingInbox,
    discord_bridge_settings,
    discord_runtime,
    listening,
)

TEXT = ChannelFacts(ChannelKind.TEXT)


class StuckInbox(RecordingInbox):
    """Receives a message and never stores it: the process dies with it in memory."""

    async def submit(self, message: InboundMessage) -> SubmitResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def texts(inbox: RecordingInbox) -> list[str]:
    return [m.text for m in inbox.messages]


def answers(fake: FakeDiscord, thread_id: str) -> str:
    return "\n".join(m["content"] for m in fake.bot_messages(thread_id))


async def test_messages_posted_while_no_process_held_the_shard_are_answered_once_by_the_next(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    fake_discord.gateway.identify_window = 0  # a restart inside 5 s would add a 5 s back-off
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    user = fake_discord.user("alice")
    async with discord_runtime(settings, redis_client, emulator):
        thread_id = (await fake_discord.post(
            fake_discord.text_channel["id"], user, "before", mention_bot=True))["id"]  # fmt: skip
        await wait_until(lambda: "before" in answers(fake_discord, thread_id))

    # No session covers the shard now: the gateway delivers these to no one.
    await fake_discord.post(thread_id, user, "gap one")
    await fake_discord.post(thread_id, user, "gap two")
    opened = await fake_discord.post(
        fake_discord.text_channel["id"], user, "a new question in the gap", mention_bot=True
    )

    async with discord_runtime(settings, redis_client, emulator):
        await wait_until(lambda: "gap two" in answers(fake_discord, thread_id))
        await wait_until(lambda: "new question" in answers(fake_discord, opened["id"]))
        await fake_discord.post(thread_id, user, "live again")
        await wait_until(lambda: "live again" in answers(fake_discord, thread_id))
        await wait_until(lambda: _drained(redis_client))

    said = answers(fake_discord, thread_id)
    for text in ("before", "gap one", "gap two", "live again"):
        assert said.count(text) == 1
    assert said.index("before") < said.index("gap one") < said.index("gap two")
    assert said.index("gap two") < said.index("live again")
    assert answers(fake_discord, opened["id"]) == "You said: a new question in the gap"
    assert fake_discord.gateway.resumes == 0
    assert fake_discord.gateway.identifies == 2


async def test_a_message_received_but_not_stored_when_the_process_died_is_read_back_in_pages(
    fake_discord: FakeDiscord, redis_client: aioredis.Redis
) -> None:
    fake_discord.gateway.identify_window = 0
    channel = fake_discord.text_channel["id"]
    user = fake_discord.user("bob")
    first = RecordingInbox()
    async with listening(fake_discord, first, redis_client):
        await fake_discord.post(channel, user, "handled", mention_bot=True)
        await first.wait_for(1)
        await wait_until(lambda: redis_client.exists(upto_key(fake_discord.guild_id)))
    async with listening(fake_discord, StuckInbox(), redis_client) as stuck:
        await fake_discord.post(channel, user, "in memory only", mention_bot=True)
        await wait_until(lambda: stuck.client.is_ready())
    offline = [f"offline {i:03d}" for i in range(130)]  # more than one page of 100
    for text in offline:
        await fake_discord.post(channel, user, text, mention_bot=True)
    fake_discord.calls.clear()
    fake_discord.rate_limit("GET", rf"/channels/{channel}/messages", times=1, retry_after=0.1)

    second = RecordingInbox()
    async with listening(fake_discord, second, redis_client):
        await wait_until(lambda: "offline 129" in texts(second))

    caught_up = [t for t in texts(second) if t != "handled"]  # re-read within the margin
    assert caught_up == ["in memory only", *offline]
    reads = fake_discord.calls_to("GET", rf"/channels/{channel}/messages")
    assert [c.status for c in reads] == [429, 200, 200]


async def test_without_a_recorded_position_nothing_is_read_but_the_start_is_recorded(
    fake_discord: FakeDiscord, redis_client: aioredis.Redis
) -> None:
    fake_discord.gateway.identify_window = 0
    channel, user = fake_discord.text_channel["id"], fake_discord.user("c")
    await fake_discord.post(channel, user, "before any listener", mention_bot=True)
    async with listening(fake_discord, StuckInbox(), redis_client):
        # The first process dies before handling a single message...
        await wait_until(lambda: redis_client.exists(upto_key(fake_discord.guild_id)))
    await fake_discord.post(channel, user, "after the first start", mention_bot=True)
    inbox = RecordingInbox()
    async with listening(fake_discord, inbox, redis_client):
        # ...yet its successor recovers what came after that process's start.
        await inbox.wait_for(1)

    # (Messages up to MARGIN_MS before that start may be read too; the inbox dedupes them.)
    assert texts(inbox)[-1] == "after the first start"


def test_only_channels_newer_than_the_position_are_read_from_just_before_it() -> None:
    now_ms = int(time.time() * 1000)
    upto = snowflake_at(now_ms - 60_000)
    quiet = Channel("1", str(upto - (10_000 << 22)), TEXT)
    busy = Channel("2", str(snowflake_at(now_ms - 1000)), TEXT)
    never = Channel("3", None, TEXT)

    plan = channels_to_read([quiet, busy, never], upto, now_ms)

    assert plan == [(busy, upto - (MARGIN_MS << 22))]


def test_reading_is_bounded_by_the_window_and_the_channel_cap() -> None:
    now_ms = int(time.time() * 1000)
    ancient = snowflake_at(now_ms - 2 * WINDOW_SECONDS * 1000)
    channels = [Channel(str(i), str(snowflake_at(now_ms - i)), TEXT) for i in range(150)]

    plan = channels_to_read(channels, ancient, now_ms)

    assert len(plan) == MAX_CHANNELS
    assert [c.id for c, _ in plan[:2]] == ["0", "1"]  # newest first
    assert {after for _, after in plan} == {snowflake_at(now_ms - WINDOW_SECONDS * 1000)}


def test_stale_dm_positions_are_forgotten_and_fresh_ones_read() -> None:
    now_ms = int(time.time() * 1000)
    fresh = str(snowflake_at(now_ms - 1000))
    stale = str(snowflake_at(now_ms - 2 * WINDOW_SECONDS * 1000))

    plan, forget = dm_channels_to_read({"10": fresh, "11": stale}, now_ms)

    assert [(c.id, after) for c, after in plan] == [("10", int(fresh) - (MARGIN_MS << 22))]
    assert forget == ["11"]


async def _drained(redis: aioredis.Redis) -> bool:
    return int(await redis.xlen(keys.READY_STREAM)) == 0


async def test_a_forum_post_opened_while_no_process_held_the_shard_is_caught_up(
    fake_discord: FakeDiscord, redis_client: aioredis.Redis
) -> None:
    fake_discord.gateway.identify_window = 0
    user = fake_discord.user("dana")
    first = RecordingInbox()
    async with listening(fake_discord, first, redis_client):
        await fake_discord.post(fake_discord.text_channel["id"], user, "hi", mention_bot=True)
        await first.wait_for(1)
        await wait_until(lambda: redis_client.exists(upto_key(fake_discord.guild_id)))

    # Offline: a new forum post (THREAD_CREATE + its first message) and a follow-up in it.
    post = await fake_discord.forum_post(user, "Transfer?", "Can I move my pension?")
    await fake_discord.post(post["id"], user, "It is a workplace one.")

    second = RecordingInbox()
    async with listening(fake_discord, second, redis_client):
        await second.wait_for(2)

    caught = [m for m in second.messages if m.thread.thread == post["id"]]
    assert [m.text for m in caught] == ["Can I move my pension?", "It is a workplace one."]
    assert caught[0].thread.channel == fake_discord.forum_channel["id"]


async def test_a_forum_post_opened_offline_is_answered_by_the_next_process(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    fake_discord.gateway.identify_window = 0
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    user = fake_discord.user("dana")
    async with discord_runtime(settings, redis_client, emulator):
        first = await fake_discord.post(
            fake_discord.text_channel["id"], user, "hi", mention_bot=True
        )
        await wait_until(lambda: "hi" in answers(fake_discord, first["id"]))

    post = await fake_discord.forum_post(user, "Transfer?", "Can I move my pension?")

    async with discord_runtime(settings, redis_client, emulator):
        await wait_until(lambda: "move my pension" in answers(fake_discord, post["id"]))
    assert answers(fake_discord, post["id"]) == "You said: Can I move my pension?"
