"""Fixtures for the discord tests: a fake Discord the real discord.py is pointed at."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yarl

# discord.py imports the stdlib `audioop` (voice support) which warns on Python 3.11+, and this
# suite turns warnings into errors: import it once here with that one warning silenced.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

from adapters.discord import DiscordAdapter
from bridge.config import Settings
from bridge.errors import StorageUnavailable
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from tests.fakes.discord import FakeDiscord


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


def discord_settings(fake: FakeDiscord, **overrides: Any) -> Settings:
    return Settings(_env_file=None, discord_bot_token=fake.token, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def recording_inbox() -> RecordingInbox:
    return RecordingInbox()


@pytest.fixture
async def discord_listener(
    fake_discord: FakeDiscord, recording_inbox: RecordingInbox
) -> AsyncIterator[DiscordAdapter]:
    """A started adapter listening on the fake gateway, submitting into `recording_inbox`."""
    adapter = DiscordAdapter(discord_settings(fake_discord))
    await adapter.start()
    task = asyncio.create_task(adapter.run(recording_inbox))
    try:
        yield adapter
    finally:
        await adapter.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
