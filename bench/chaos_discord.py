"""The chaos run's Discord side: a multi-guild fake Discord, threads driven through its gateway,
answers read back, and its faults (429s on message create, dropped connections with replays)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.chaos_check import token
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_wire import Json

GUILDS_PER_SHARD = 2
REPLAY_OVERLAP = 5  # events replayed before the client's sequence on each RESUME


async def start_fake(shards: int) -> FakeDiscord:
    fake = FakeDiscord()
    await fake.start()
    for k in range(shards * GUILDS_PER_SHARD):
        fake.add_guild(f"g{k}", shard=(k % shards, shards))
    fake.recommended_shards = shards
    fake.gateway.max_concurrency = 1  # a small bot's limit: restarts collide and back off
    fake.gateway.replay_overlap = REPLAY_OVERLAP
    return fake


def env(fake: FakeDiscord) -> dict[str, str]:
    return {"DISCORD_BOT_TOKEN": fake.token, "BENCH_FAKE_DISCORD_URL": fake.url}


def slot_env(shards: int, slot: int, processes: int) -> dict[str, str]:
    """Shards dealt round-robin over the processes."""
    mine = [s for s in range(shards) if s % processes == slot]
    return {
        "ENGAGE_BRIDGE_DISCORD_SHARD_COUNT": str(shards),
        "ENGAGE_BRIDGE_DISCORD_SHARD_IDS": str(mine),
    }


async def all_shards_live(fake: FakeDiscord, shards: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len({s for s, _ in fake.gateway.live_shards()}) < shards:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every Discord shard connected within {timeout}s")
        await asyncio.sleep(0.1)


class DiscordDriver:
    """A user mentions the bot in a guild's channel, then writes in the thread the bot opens."""

    def __init__(self, fake: FakeDiscord, stats: Any, rng: random.Random) -> None:
        self.fake, self.stats, self.rng = fake, stats, rng
        self.guilds = list(fake.guilds.values())
        self.users = [fake.user(f"user{i}") for i in range(20)]

    async def thread(self, n: int, messages: int, gap: float, deadline: float) -> None:
        guild = self.guilds[n % len(self.guilds)]
        user = self.users[n % len(self.users)]
        first = token(n, 0)
        self.stats.sent_at[first] = time.monotonic()
        posted = await self.fake.post(
            guild["text_channel_id"], user, f"{first} hi", mention_bot=True
        )
        thread_id = posted["id"]
        self._sent(first, thread_id)
        # A follow-up can only be written once the bot has opened the thread.
        try:
            await self.fake.wait_until(
                lambda: thread_id in self.fake.threads_from_messages,
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except TimeoutError:
            return
        for index in range(1, messages):
            await asyncio.sleep(self.rng.uniform(0.0, gap))
            tok = token(n, index)
            self._sent(tok, thread_id)
            await self.fake.post(thread_id, user, f"{tok} more")

    def _sent(self, tok: str, thread_id: str) -> None:
        self.stats.sent_at.setdefault(tok, time.monotonic())
        self.stats.thread_of[tok] = f"discord:{thread_id}"
        self.stats.waiters.setdefault(tok, asyncio.get_running_loop().create_future())


def watch_answers(fake: FakeDiscord, stats: Any) -> None:
    """Stamp each token's first answer when the bot's message is created."""
    bot_id = fake.bot["id"]

    def stamped(message: Json) -> None:
        if message["author"]["id"] == bot_id:
            stats.saw_post(f"discord:{message['channel_id']}", str(message.get("content") or ""))

    fake.observers.append(stamped)


def answers(fake: FakeDiscord) -> list[tuple[str, str]]:
    """(thread id, text) of every bot message in a thread, in creation order."""
    bot_id = fake.bot["id"]
    return [
        (f"discord:{m['channel_id']}", str(m.get("content") or ""))
        for m in fake.messages.values()
        if m["author"]["id"] == bot_id and fake.channels[m["channel_id"]]["type"] == 11
    ]


class DiscordFaults:
    """Every few seconds: 429s on message create; a live gateway connection dropped (the
    client RESUMEs and gets REPLAY_OVERLAP already-seen events again)."""

    def __init__(self, fake: FakeDiscord, rng: random.Random, events: Any) -> None:
        self.fake, self.rng, self.events = fake, rng, events
        now = time.monotonic()
        self.next_429 = now + 1.5
        self.next_drop = now + 4.0

    async def tick(self, busy: bool = True) -> None:
        """`busy`: many threads are waiting for answers (see `chaos.rate_limits_fair`)."""
        now = time.monotonic()
        if now >= self.next_429 and busy:
            # Only once the last burst was consumed: unconsumed 429s piling up while traffic is
            # quiet would refuse every post of the last busy thread, unlike a real rate limit.
            self.fake.rate_limits = [r for r in self.fake.rate_limits if r.times > 0]
            if not self.fake.rate_limits:
                self.fake.rate_limit("POST", r"/channels/\d+/messages", times=2, retry_after=1.0)
                self.events["Discord 429s on message create"] += 2
            self.next_429 = now + 3.0
        if now >= self.next_drop:
            live = [sid for sid, s in self.fake.gateway.sessions.items() if s.live]
            if live:
                await self.fake.gateway.drop(session_id=self.rng.choice(live))
                self.events["Discord gateway drops (RESUME with replayed events)"] += 1
            self.next_drop = now + 4.0


def summary(fake: FakeDiscord, thread_of: dict[str, str]) -> str:
    discord_texts = sum(1 for t in thread_of.values() if t.startswith("discord:"))
    gateway = fake.gateway
    catch_up_reads = len(fake.calls_to("GET", r"/channels/\d+/messages"))
    return (
        f"platforms: slack {len(thread_of) - discord_texts} texts, discord {discord_texts} texts; "
        f"Discord gateway: {gateway.identifies} IDENTIFYs ({gateway.rejected_identifies} refused "
        f"by max_concurrency), {gateway.resumes} RESUMEs; catch-up history reads: {catch_up_reads}"
    )
