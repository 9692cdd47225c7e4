"""Fixtures for the discord tests: a fake Discord the real discord.py is pointed at."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yarl

# discord.py imports the stdlib `audioop` (voice support) which warns on Python 3.11+, and this
# suite turns warnings into errors: import it once here with that one warning silenced.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

from adapters.discord import DiscordAdapter
from adapters.discord.settings import DiscordSettings
from bridge.config import FileConfig, Policy, Routing, Settings
from bridge.engage.client import EngageClient
from bridge.errors import StorageUnavailable
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.discord import FakeDiscord
from tests.fixtures_core import core_settings


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = f"{fake.url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield fake
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
        await fake.close()


class RecordingInbox:
    """An Inbox that accepts everything and remembers it (adapter tests without the core)."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.known: set[ThreadKey] = set()
        self.failures_before_success = 0
        self._changed = asyncio.Condition()

    async def submit(self, message: InboundMessage) -> SubmitResult:
        if self.failures_before_success > 0:
            self.failures_before_success -= 1
            raise StorageUnavailable("redis is down (test)")
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        return SubmitResult(accepted=True, reason="accepted")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return thread in self.known

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[InboundMessage]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.messages) >= count)
        return self.messages


def discord_settings(
    fake: FakeDiscord, *, discord: Mapping[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Settings with Discord on (the fake's token); `discord` adds to DiscordSettings."""
    values: dict[str, Any] = {"bot_token": fake.token, **(discord or {})}
    return Settings([DiscordSettings(_env_file=None, **values)], _env_file=None, **overrides)


def discord_options(fake: FakeDiscord, **overrides: Any) -> DiscordSettings:
    """Discord-only settings that trust the fake's CDN for attachments."""
    values: dict[str, Any] = {
        "bot_token": fake.token,
        "attachment_origins": [f"{fake.url}/cdn"],
        **overrides,
    }
    return DiscordSettings(_env_file=None, **values)


@pytest.fixture
def recording_inbox() -> RecordingInbox:
    return RecordingInbox()


@asynccontextmanager
async def listening(
    fake: FakeDiscord,
    inbox: RecordingInbox,
    redis: aioredis.Redis | None = None,
    options: DiscordSettings | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[DiscordAdapter]:
    """A started adapter listening on the fake gateway into `inbox` (gap recovery on when given
    Redis); leaving the block drops it like a killed process: whatever it had received but not
    submitted is gone with it."""
    adapter = DiscordAdapter(
        settings or discord_settings(fake), redis, options or discord_options(fake)
    )
    await adapter.start()
    task = asyncio.create_task(adapter.run(inbox))
    try:
        yield adapter
    finally:
        await adapter.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@pytest.fixture
async def discord_listener(
    fake_discord: FakeDiscord, recording_inbox: RecordingInbox
) -> AsyncIterator[DiscordAdapter]:
    """A started adapter listening on the fake gateway, submitting into `recording_inbox`."""
    async with listening(fake_discord, recording_inbox) as adapter:
        yield adapter


def discord_bridge_settings(
    tmp_path: Path,
    emulator: Any,
    fake: FakeDiscord,
    *,
    discord: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """A whole bridge in-process with Discord on: the test emulator (parrot), fast workers."""
    policy = Policy(forum_channels=[fake.forum_channel["id"]])
    values: dict[str, Any] = {
        "http_port": 0,
        "data_dir": tmp_path / "data",
        "engage_api_url": emulator.url,
        "engage_api_key": emulator.api_key,
        "engage_org_id": emulator.org_id,
        "platforms": [DiscordSettings(_env_file=None, bot_token=fake.token, **(discord or {}))],
        "file": FileConfig(routing=Routing(default_agent="parrot"), policy=policy),
        **overrides,
    }
    return core_settings(**values)


@asynccontextmanager
async def discord_runtime(
    settings: Settings,
    redis: aioredis.Redis,
    emulator: Any,
    options: DiscordSettings | None = None,
) -> AsyncIterator[tuple[BridgeRuntime, DiscordAdapter]]:
    """The real runtime (listener, workers, HTTP) with a fresh Discord adapter."""
    engage = EngageClient(
        base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id, max_attempts=2
    )
    adapter = DiscordAdapter(settings, redis, options)
    try:
        async with BridgeRuntime(settings, adapters=[adapter], redis=redis, engage=engage) as rt:
            yield rt, adapter
    finally:
        await engage.aclose()


@pytest.fixture
async def discord_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> AsyncIterator[BridgeRuntime]:
    """A running bridge whose only adapter is Discord, talking to `fake_discord`."""
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    async with discord_runtime(settings, redis_client, emulator) as (rt, _):
        yield rt
