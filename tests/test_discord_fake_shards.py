"""The fake gateway shards like Discord: guild routing, identify rules, no delivery to the dead."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_gateway import shard_of

Frame = dict[str, Any]


class Link:
    """A raw gateway connection, so the tests see exactly what Discord would send."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def receive(self) -> Frame:
        message = await self.ws.receive(timeout=5)
        if message.type is not aiohttp.WSMsgType.TEXT:
            return {"closed": self.ws.close_code}
        frame: Frame = json.loads(message.data)
        return frame

    async def dispatches(self, count: int) -> list[Frame]:
        return [await self.receive() for _ in range(count)]

    async def identify(self, fake: FakeDiscord, shard: tuple[int, int]) -> Frame:
        await self.ws.send_json(
            {"op": 2, "d": {"token": fake.token, "intents": 513, "shard": list(shard)}}
        )
        return await self.receive()


@asynccontextmanager
async def link(fake: FakeDiscord) -> AsyncIterator[Link]:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        connection = Link(ws)
        assert (await connection.receive())["op"] == 10  # HELLO
        yield connection


@pytest.fixture
def three_shards(fake_discord: FakeDiscord) -> list[str]:
    """One more guild on each of 3 shards (the default guild lands wherever its id says)."""
    return [fake_discord.add_guild(f"g{k}", shard=(k, 3))["id"] for k in range(3)]


def test_add_guild_places_the_guild_on_the_asked_shard(fake_discord: FakeDiscord) -> None:
    for count in (2, 3, 6):
        for k in range(count):
            guild = fake_discord.add_guild("x", shard=(k, count))
            assert (int(guild["id"]) >> 22) % count == k
            assert fake_discord.channels[guild["text_channel_id"]]["guild_id"] == guild["id"]


async def test_ready_and_guild_create_list_only_the_shards_guilds(
    fake_discord: FakeDiscord, three_shards: list[str]
) -> None:
    mine = sorted(g for g in fake_discord.guilds if shard_of(g, 3) == 1)
    async with link(fake_discord) as gateway:
        ready = await gateway.identify(fake_discord, (1, 3))
        creates = await gateway.dispatches(len(mine))

    assert ready["t"] == "READY"
    assert ready["d"]["shard"] == [1, 3]
    assert sorted(g["id"] for g in ready["d"]["guilds"]) == mine
    assert [c["t"] for c in creates] == ["GUILD_CREATE"] * len(mine)
    assert sorted(c["d"]["id"] for c in creates) == mine
    for create in creates:
        assert {ch["guild_id"] for ch in create["d"]["channels"]} == {create["d"]["id"]}


@pytest.mark.parametrize("shard", [(3, 3), (-1, 3), (0, 0)])
async def test_an_invalid_shard_closes_with_4010(
    fake_discord: FakeDiscord, shard: tuple[int, int]
) -> None:
    async with link(fake_discord) as gateway:
        assert await gateway.identify(fake_discord, shard) == {"closed": 4010}


async def test_too_few_shards_closes_with_4011(fake_discord: FakeDiscord) -> None:
    fake_discord.gateway.min_shards = 2
    async with link(fake_discord) as gateway:
        assert await gateway.identify(fake_discord, (0, 1)) == {"closed": 4011}


async def test_identifies_beyond_max_concurrency_get_invalid_session(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.gateway.max_concurrency = 2
    async with link(fake_discord) as a, link(fake_discord) as b, link(fake_discord) as c:
        assert (await a.identify(fake_discord, (0, 4)))["t"] == "READY"
        assert (await b.identify(fake_discord, (1, 4)))["t"] == "READY"  # another bucket
        # Shard 2 shares shard 0's bucket (2 % 2 == 0) inside the 5 s window.
        assert await c.identify(fake_discord, (2, 4)) == {"op": 9, "d": False}
    assert fake_discord.gateway.rejected_identifies == 1


async def test_an_event_reaches_only_the_session_whose_shard_covers_its_guild(
    fake_discord: FakeDiscord, three_shards: list[str]
) -> None:
    user = fake_discord.user("u")
    async with link(fake_discord) as zero, link(fake_discord) as one:
        await zero.identify(fake_discord, (0, 3))
        await zero.dispatches(sum(1 for g in fake_discord.guilds if shard_of(g, 3) == 0))
        await one.identify(fake_discord, (1, 3))
        await one.dispatches(sum(1 for g in fake_discord.guilds if shard_of(g, 3) == 1))

        on_one = fake_discord.guilds[three_shards[1]]["text_channel_id"]
        on_zero = fake_discord.guilds[three_shards[0]]["text_channel_id"]
        await fake_discord.post(on_one, user, "for shard one")
        await fake_discord.post(on_zero, user, "for shard zero")

        assert (await one.receive())["d"]["content"] == "for shard one"
        assert (await zero.receive())["d"]["content"] == "for shard zero"


async def test_events_while_a_shard_is_offline_reach_a_resume_but_not_a_new_identify(
    fake_discord: FakeDiscord, three_shards: list[str]
) -> None:
    user = fake_discord.user("u")
    channel = fake_discord.guilds[three_shards[2]]["text_channel_id"]
    guilds_on_two = sum(1 for g in fake_discord.guilds if shard_of(g, 3) == 2)
    async with link(fake_discord) as first:
        ready = await first.identify(fake_discord, (2, 3))
        await first.dispatches(guilds_on_two)
    session_id, seq = ready["d"]["session_id"], fake_discord.gateway.sessions
    last_seq = seq[session_id].seq

    await fake_discord.post(channel, user, "while offline")

    async with link(fake_discord) as fresh:
        fake_discord.gateway.identify_window = 0
        assert (await fresh.identify(fake_discord, (2, 3)))["t"] == "READY"
        creates = await fresh.dispatches(guilds_on_two)
        assert {c["t"] for c in creates} == {"GUILD_CREATE"}
        await fake_discord.post(channel, user, "live")
        assert (await fresh.receive())["d"]["content"] == "live"  # not "while offline"
    async with link(fake_discord) as resumed:
        await resumed.ws.send_json(
            {"op": 6, "d": {"token": fake_discord.token, "session_id": session_id,
                            "seq": last_seq}}
        )  # fmt: skip
        replayed = await resumed.dispatches(3)
    assert [f.get("t") for f in replayed] == ["MESSAGE_CREATE", "MESSAGE_CREATE", "RESUMED"]
    assert [f["d"].get("content") for f in replayed[:2]] == ["while offline", "live"]


async def test_a_session_gone_longer_than_the_resume_window_cannot_resume(
    fake_discord: FakeDiscord,
) -> None:
    async with link(fake_discord) as first:
        ready = await first.identify(fake_discord, (0, 1))
    fake_discord.gateway.resume_window = 0
    async with link(fake_discord) as late:
        await late.ws.send_json(
            {"op": 6, "d": {"token": fake_discord.token,
                            "session_id": ready["d"]["session_id"], "seq": 1}}
        )  # fmt: skip
        assert await late.receive() == {"op": 9, "d": False}


async def test_history_pages_after_a_snowflake_newest_first_like_rest(
    fake_discord: FakeDiscord,
) -> None:
    channel = fake_discord.text_channel["id"]
    user = fake_discord.user("u")
    posted = [await fake_discord.post(channel, user, f"m{i}") for i in range(5)]
    bot = discord.Client(intents=discord.Intents.none())
    await bot.login(fake_discord.token)
    try:
        page = await bot.http.logs_from(int(channel), 2, after=int(posted[0]["id"]))
        rest = await bot.http.logs_from(int(channel), 100, after=int(page[0]["id"]))
        with pytest.raises(discord.HTTPException) as refused:
            await bot.http.logs_from(int(channel), 101)
    finally:
        await bot.close()

    assert [m["content"] for m in page] == ["m2", "m1"]
    assert [m["content"] for m in rest] == ["m4", "m3"]
    assert "guild_id" not in page[0]
    assert "member" not in page[0]
    assert refused.value.code == 50035
