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


async def test_components_over_discords_limits_are_refused(
    fake_discord: FakeDiscord, client: discord.Client
) -> None:
    channel = int(fake_discord.text_channel["id"])
    row = {"type": 1, "components": [{"type": 2, "style": 2, "custom_id": "a", "label": "A"}]}
    six_rows = [{"type": 1, "components": [{"type": 2, "style": 2, "custom_id": f"b{i}"}]}
                for i in range(6)]  # fmt: skip
    long_id = [{"type": 1, "components": [{"type": 2, "style": 2, "custom_id": "c" * 101}]}]

    for components in (six_rows, long_id, [row, row]):  # the last: a duplicate custom id
        with pytest.raises(discord.HTTPException) as refused:
            await client.http.request(
                discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel),
                json={"content": "x", "components": components},
            )
        assert (refused.value.status, refused.value.code) == (400, 50035)
    assert fake_discord.bot_messages(str(channel)) == []


async def test_a_bucket_announces_its_limit_and_refuses_the_write_past_it(
    fake_discord: FakeDiscord,
) -> None:
    bucket = fake_discord.limit_channel_writes(2, 60.0)
    url = f"{fake_discord.url}/api/v10/channels/{fake_discord.text_channel['id']}/messages"
    headers = {"Authorization": f"Bot {fake_discord.token}"}

    async with aiohttp.ClientSession(headers=headers) as http:
        first = await http.post(url, json={"content": "1"})
        second = await http.post(url, json={"content": "2"})
        third = await http.post(url, json={"content": "3"})
        body = await third.json()

    assert [r.status for r in (first, second, third)] == [200, 200, 429]
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert third.headers["Via"]
    assert 0 < body["retry_after"] <= 60
    assert bucket.rejected == 1
