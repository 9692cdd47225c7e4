"""Attachments on Discord: text files inlined from the CDN up to a cap, the rest referenced by
name, type and size, nothing fetched that must not be (real discord.py, fake Discord and CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from adapters.discord.settings import DiscordSettings
from tests.fakes.discord import FakeDiscord
from tests.fixtures_core import wait_until
from tests.fixtures_discord import (
    RecordingInbox,
    discord_bridge_settings,
    discord_options,
    discord_runtime,
    listening,
)

CODE = ("def pension_age(born: int) -> int:\n    return 57 if born >= 1973 else 55\n" * 250)[
    : 20 * 1024
]


async def test_a_20_kb_python_file_reaches_the_agent_and_a_50_mb_file_is_never_fetched(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    channel = fake_discord.text_channel["id"]
    code = fake_discord.upload(channel, "ages.py", CODE.encode(), "text/x-python; charset=utf-8")
    video = fake_discord.upload(channel, "talk.mp4", b"\0" * 16, "video/mp4", size=50 * 2**20)

    async with discord_runtime(settings, redis_client, emulator, discord_options(fake_discord)):
        asked = await fake_discord.post(
            channel, fake_discord.user("ann"), "check this", mention_bot=True,
            attachments=[code, video],
        )  # fmt: skip
        await wait_until(lambda: bool(fake_discord.bot_messages(asked["id"])))

    [conversation] = emulator.state.conversations.values()
    [stored] = [m for m in conversation.messages if m.role == "user"]
    assert stored.content.startswith("check this\n\n--- attachment: ages.py (text/x-python")
    assert CODE.rstrip() in stored.content
    assert "[attachment not read: talk.mp4 (video/mp4, 50.0 MB): not a text file]" in stored.content
    assert fake_discord.cdn.fetched == [code["url"].split("/cdn")[1].split("?")[0]]


async def test_text_over_the_cap_is_referenced_not_fetched_and_a_lying_size_is_cut_off(
    fake_discord: FakeDiscord, redis_client: aioredis.Redis
) -> None:
    channel = fake_discord.text_channel["id"]
    big = fake_discord.upload(channel, "big.csv", b"a,b\n" * 300, "text/csv")  # 1,200 bytes
    liar = fake_discord.upload(channel, "liar.txt", b"x" * 5000, "text/plain", size=10)
    inbox = RecordingInbox()
    options = discord_options(fake_discord, attachment_inline_bytes=1024)

    async with listening(fake_discord, inbox, redis_client, options):
        await fake_discord.post(
            channel, fake_discord.user("bo"), "files", mention_bot=True, attachments=[big, liar]
        )
        [message] = await inbox.wait_for(1)

    assert "[attachment not read: big.csv (text/csv, 1.2 KB): larger than the 1.0 KB limit]" in (
        message.text
    )
    assert "[attachment not read: liar.txt (text/plain, 10 B): larger than the 1.0 KB limit]" in (
        message.text
    )
    assert "xxxx" not in message.text
    assert len(fake_discord.cdn.fetched) == 1  # only the liar, and only its first 1 KB was kept
    assert message.attachments == ()


async def test_a_url_outside_discords_cdn_is_never_fetched(
    fake_discord: FakeDiscord, recording_inbox: RecordingInbox
) -> None:
    channel = fake_discord.text_channel["id"]
    notes = fake_discord.upload(channel, "notes.md", b"# secret plan", "text/markdown")

    trust_discord_only = DiscordSettings(_env_file=None, bot_token=fake_discord.token)
    async with listening(fake_discord, recording_inbox, None, trust_discord_only):
        await fake_discord.post(
            channel, fake_discord.user("cy"), "see", mention_bot=True, attachments=[notes]
        )
        [message] = await recording_inbox.wait_for(1)

    assert fake_discord.cdn.fetched == []
    assert "[attachment not read: notes.md (text/markdown, 13 B): not on Discord's CDN]" in (
        message.text
    )
