"""Discord: non-staff cannot take a staff-held thread back, by keyword or slash command; keyword
refusals come as a DM, slash refusals as the ephemeral followup; nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.config import FileConfig, Policy, Routing, Staff
from bridge.models import ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.discord import FakeDiscord
from tests.fixtures_core import wait_until
from tests.fixtures_discord import discord_bridge_settings, discord_runtime


@pytest.fixture
async def bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> AsyncIterator[BridgeRuntime]:
    config = FileConfig(
        routing=Routing(default_agent="parrot"),
        policy=Policy(forum_channels=[fake_discord.forum_channel["id"]]),
        staff=Staff(discord_role_ids=[fake_discord.staff_role["id"]]),
    )
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord, file=config)
    async with discord_runtime(settings, redis_client, emulator) as (rt, _):
        yield rt


def essentials(record: Any) -> tuple[str, str, str, str]:
    return record.conversation_id, record.status, record.agent, record.assignee


async def staff_held(rt: BridgeRuntime, fake: FakeDiscord, starter: Any) -> ThreadKey:
    posted = await fake.post(fake.text_channel["id"], starter, "hello", mention_bot=True)
    thread_id = posted["id"]
    await wait_until(lambda: len(fake.bot_messages(thread_id)) >= 1)
    key = ThreadKey("discord", fake.guild_id, fake.text_channel["id"], thread_id)
    await fake.post(thread_id, fake.user("sam", staff=True), "I'll take it from here")

    async def held() -> bool:
        record = await rt.bridge.threads.get(key)
        return record is not None and record.status == "human"

    await wait_until(held)
    return key


async def test_keyword_commands_from_non_staff_are_refused_by_dm_and_change_nothing(
    bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    starter, other = fake_discord.user("alice"), fake_discord.user("bob")
    key = await staff_held(bridge, fake_discord, starter)
    before = await bridge.bridge.threads.get(key)
    posts_before = len(fake_discord.bot_messages(key.thread))
    for user, text in [(starter, "resume"), (starter, "reset"), (other, "resolve")]:
        await fake_discord.post(key.thread, user, text, mention_bot=True)
    await fake_discord.post(key.thread, other, "agent echo", mention_bot=True)
    await wait_until(
        lambda: len(fake_discord.dms_to(starter)) == 2 and len(fake_discord.dms_to(other)) == 2
    )
    assert all("Only staff" in t for t in fake_discord.dms_to(starter) + fake_discord.dms_to(other))
    assert essentials(await bridge.bridge.threads.get(key)) == essentials(before)
    assert len(fake_discord.bot_messages(key.thread)) == posts_before


async def test_slash_commands_from_non_staff_are_refused_ephemerally_and_not_queued(
    bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    starter = fake_discord.user("carol")
    key = await staff_held(bridge, fake_discord, starter)
    before = await bridge.bridge.threads.get(key)
    for name in ("resume", "resolve", "reset"):
        interaction = await fake_discord.slash(name, starter, key.thread)
        record = fake_discord.interactions[interaction["token"]]
        await fake_discord.wait_until(lambda r=record: bool(r.get("followups")))  # type: ignore[misc]
        [followup] = record["followups"]
        assert "Only staff" in followup["content"]
        assert followup["flags"] & (1 << 6)  # ephemeral
    assert essentials(await bridge.bridge.threads.get(key)) == essentials(before)
    assert not await bridge.redis.exists(f"{{{key}}}:inbox")


async def test_staff_may_give_the_thread_back_with_a_slash_command(
    bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    key = await staff_held(bridge, fake_discord, fake_discord.user("dave"))
    await fake_discord.slash("resume", fake_discord.user("sue", staff=True), key.thread)

    async def resumed() -> bool:
        record = await bridge.bridge.threads.get(key)
        return record is not None and record.status == "bot"

    await wait_until(resumed)
