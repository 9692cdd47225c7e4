"""Discord shards split over bridge runtimes: each runtime listens to its shards only, and every
message in every shard's guilds is answered exactly once, in order, in its thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from adapters.discord import DiscordAdapter
from bridge.store import keys
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_gateway import shard_of
from tests.fixtures_core import wait_until
from tests.fixtures_discord import discord_bridge_settings, discord_runtime

SHARDS = 3


@asynccontextmanager
async def runtimes(
    tmp_path: Path, redis: aioredis.Redis, emulator: Any, fake: FakeDiscord, slices: list[list[int]]
) -> AsyncIterator[list[DiscordAdapter]]:
    """One runtime per slice of shard ids, all on one Redis and one emulator."""
    async with AsyncExitStack() as stack:
        adapters = []
        for n, shard_ids in enumerate(slices):
            settings = discord_bridge_settings(
                tmp_path / f"r{n}", emulator, fake,
                discord={"shard_count": SHARDS, "shard_ids": shard_ids},
            )  # fmt: skip
            _, adapter = await stack.enter_async_context(discord_runtime(settings, redis, emulator))
            adapters.append(adapter)
        yield adapters


def answers(fake: FakeDiscord, thread_id: str) -> list[str]:
    return [m["content"] for m in fake.bot_messages(thread_id)]


async def test_three_runtimes_each_with_one_shard_answer_every_guild_once_in_order(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    guilds = [fake_discord.add_guild(f"g{k}", shard=(k, SHARDS)) for k in range(SHARDS)]
    user = fake_discord.user("alice")
    async with runtimes(tmp_path, redis_client, emulator, fake_discord, [[0], [1], [2]]) as ads:
        assert [a.client.shard_ids for a in ads] == [[0], [1], [2]]  # type: ignore[attr-defined]
        await wait_until(lambda: len(fake_discord.gateway.live_shards()) == SHARDS)
        assert fake_discord.gateway.live_shards() == [(0, 3), (1, 3), (2, 3)]
        threads = []
        for guild in guilds:
            channel = guild["text_channel_id"]
            first = await fake_discord.post(channel, user, f"{guild['name']} one", mention_bot=True)
            threads.append(first["id"])
        for thread_id in threads:
            await wait_until(lambda t=thread_id: len(answers(fake_discord, t)) >= 1)
        for thread_id, guild in zip(threads, guilds, strict=True):
            await fake_discord.post(thread_id, user, f"{guild['name']} two")
            await fake_discord.post(thread_id, user, f"{guild['name']} three")
        for thread_id, guild in zip(threads, guilds, strict=True):
            last = f"{guild['name']} three"
            await wait_until(lambda t=thread_id, x=last: x in "\n".join(answers(fake_discord, t)))
        await wait_until(lambda: _drained(redis_client))

    for thread_id, guild in zip(threads, guilds, strict=True):
        name = guild["name"]
        # The parrot may answer "two" and "three" together if they share a turn.
        said = "\n".join(answers(fake_discord, thread_id))
        assert said.count(f"{name} one") == 1
        assert said.count(f"{name} two") == 1
        assert said.count(f"{name} three") == 1
        assert said.index(f"{name} one") < said.index(f"{name} two") < said.index(f"{name} three")
        assert fake_discord.channels[thread_id]["parent_id"] == guild["text_channel_id"]
        assert shard_of(guild["id"], SHARDS) == guilds.index(guild)


async def test_two_runtimes_split_three_shards_and_dms_stay_on_shard_zero(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    guilds = [fake_discord.add_guild(f"g{k}", shard=(k, SHARDS)) for k in range(SHARDS)]
    user = fake_discord.user("bob")
    dm = fake_discord.dm_channel(user)["id"]
    async with runtimes(tmp_path, redis_client, emulator, fake_discord, [[0, 2], [1]]):
        await wait_until(lambda: len(fake_discord.gateway.live_shards()) == SHARDS)
        assert fake_discord.gateway.live_shards() == [(0, 3), (1, 3), (2, 3)]
        firsts = [
            await fake_discord.post(g["text_channel_id"], user, f"{g['name']} hi", mention_bot=True)
            for g in guilds
        ]
        await fake_discord.post(dm, user, "a direct message")
        for first in firsts:
            await wait_until(lambda t=first["id"]: len(answers(fake_discord, t)) >= 1)
        await wait_until(lambda: len(answers(fake_discord, dm)) >= 1)
        await wait_until(lambda: _drained(redis_client))

    for first, guild in zip(firsts, guilds, strict=True):
        assert answers(fake_discord, first["id"]) == [f"You said: {guild['name']} hi"]
    assert answers(fake_discord, dm) == ["You said: a direct message"]


async def _drained(redis: aioredis.Redis) -> bool:
    """No scheduled work left: nothing can still post a late duplicate."""
    return int(await redis.xlen(keys.READY_STREAM)) == 0
