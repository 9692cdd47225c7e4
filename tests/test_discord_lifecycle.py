"""The support lifecycle on the Discord path: a member with the staff role takes a thread over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.config import FileConfig, Routing, Staff
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
        staff=Staff(discord_role_ids=[fake_discord.staff_role["id"]]),
    )
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord, file=config)
    async with discord_runtime(settings, redis_client, emulator) as (rt, _):
        yield rt


def conversation(emulator: Any) -> Any:
    [found] = [c for c in emulator.state.conversations.values() if c.source == "discord"]
    return found


async def answered(fake: FakeDiscord, channel_id: str, count: int) -> list[str]:
    await wait_until(lambda: len(fake.bot_messages(channel_id)) >= count)
    return [m["content"] for m in fake.bot_messages(channel_id)]


async def status_becomes(emulator: Any, status: str) -> dict[str, Any]:
    await wait_until(lambda: conversation(emulator).data.get("status") == status)
    return dict(conversation(emulator).data)


async def test_discord_thread_walks_bot_human_resolved_reopened(
    bridge: BridgeRuntime, fake_discord: FakeDiscord, emulator: Any
) -> None:
    alice = fake_discord.user("alice")
    sam = fake_discord.user("sam", staff=True)
    text_channel = fake_discord.text_channel["id"]
    thread = (await fake_discord.post(text_channel, alice, "How do I retire?", mention_bot=True))[
        "id"
    ]
    await answered(fake_discord, thread, 1)
    assert len(emulator.state.runs) == 1

    await fake_discord.post(thread, sam, "Hi Alice, Sam here.")
    data = await status_becomes(emulator, "human")
    assert data["assignee"] == sam["id"]
    assert data["ticket_id"] == thread
    assert conversation(emulator).source == "discord"
    assert "Handing this thread over" in (await answered(fake_discord, thread, 2))[1]

    await fake_discord.post(thread, alice, "Thanks Sam")
    await wait_until(
        lambda: any(m.content == "Thanks Sam" for m in conversation(emulator).messages)
    )
    assert len(emulator.state.runs) == 1
    assert len(fake_discord.bot_messages(thread)) == 2

    await fake_discord.post(thread, sam, "resolve", mention_bot=True)
    await status_becomes(emulator, "resolved")
    await answered(fake_discord, thread, 3)
    assert len(emulator.state.runs) == 1

    await fake_discord.post(thread, alice, "One more question")
    await status_becomes(emulator, "bot")
    replies = await answered(fake_discord, thread, 5)
    assert replies[-1].endswith("One more question")
    assert len(emulator.state.runs) == 2
