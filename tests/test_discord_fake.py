"""The fake Discord keeps Discord's limits, so adapter tests against it mean something."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest

from tests.fakes.discord import FakeDiscord


@pytest.fixture
async def client(fake_discord: FakeDiscord) -> AsyncIterator[discord.Client]:
    bot = discord.Client(intents=discord.Intents.none())
    await bot.login(fake_discord.token)
    yield bot
    await bot.close()


async def test_content_over_2000_characters_is_refused_with_50035(
    fake_discord: FakeDiscord, client: discord.Client
) -> None:
    channel = client.get_partial_messageable(int(fake_discord.text_channel["id"]))

    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("x" * 2001)

    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert fake_discord.bot_messages(fake_discord.text_channel["id"]) == []


async def test_a_nonce_longer_than_25_characters_is_refused(
    fake_discord: FakeDiscord, client: discord.Client
) -> None:
    channel = client.get_partial_messageable(int(fake_discord.text_channel["id"]))

    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("hi", nonce="n" * 26)

    assert refused.value.code == 50035


async def test_a_second_thread_on_one_message_is_refused_with_160004(
    fake_discord: FakeDiscord, client: discord.Client
) -> None:
    posted = await fake_discord.post(fake_discord.text_channel["id"], fake_discord.user("a"), "q")
    channel_id, message_id = int(posted["channel_id"]), int(posted["id"])
    await client.http.start_thread_with_message(
        channel_id, message_id, name="one", auto_archive_duration=1440
    )

    with pytest.raises(discord.HTTPException) as refused:
        await client.http.start_thread_with_message(
            channel_id, message_id, name="two", auto_archive_duration=1440
        )

    assert refused.value.code == 160004
    assert fake_discord.channels[posted["id"]]["name"] == "one"


async def test_a_wrong_token_gets_401_and_discord_py_reports_a_login_failure(
    fake_discord: FakeDiscord,
) -> None:
    bot = discord.Client(intents=discord.Intents.none())
    try:
        with pytest.raises(discord.LoginFailure):
            await bot.login("wrong")
    finally:
        await bot.close()


async def test_json_answers_and_429s_look_the_way_discord_py_needs_them(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.rate_limit("GET", "/users/@me", retry_after=0.5)
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with aiohttp.ClientSession(f"{fake_discord.url}/") as http:
        async with http.get("api/v10/users/@me", headers=headers) as limited:
            assert limited.status == 429
            assert limited.headers["Via"]
            assert (await limited.json())["retry_after"] == 0.5
        async with http.get("api/v10/users/@me", headers=headers) as me:
            assert me.status == 200
            assert me.headers["Content-Type"] == "application/json"
