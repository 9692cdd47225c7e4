"""Fixtures for the slack tests: a fake Slack on loopback and settings pointing at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.slack import SlackAdapter, create_adapter
from adapters.slack.settings import SlackSettings
from adapters.web.settings import WebSettings
from bridge.config import FileConfig, Routing, Settings
from bridge.engage.models import ConversationReadFull
from bridge.models import ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import EventSender


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    yield slack
    await slack.aclose()


def slack_settings(
    slack: FakeSlack,
    *,
    socket_mode: bool = False,
    credentials: Mapping[str, Any] | None = None,
    web_enabled: bool = True,
    **overrides: Any,
) -> Settings:
    """Settings for a bridge whose Slack is `slack` (HTTP Events API, or Socket Mode);
    `credentials` replace SlackSettings' (bot_token=None, say)."""
    slack_values: dict[str, Any] = {
        "bot_token": slack.bot_token,
        "signing_secret": slack.signing_secret,
        "api_url": slack.api_url,
        "app_token": slack.app_token if socket_mode else None,
        **(credentials or {}),
    }
    platforms = [
        SlackSettings(_env_file=None, **slack_values),
        WebSettings(_env_file=None, enabled=web_enabled),
    ]
    values: dict[str, Any] = {"config_file": None, **overrides}
    return Settings(platforms, _env_file=None, **values)


@dataclass
class SlackBridge:
    """A running bridge (real Bolt app, real Redis, emulator) wired to the fake Slack."""

    runtime: BridgeRuntime
    slack: FakeSlack
    adapter: SlackAdapter
    events: EventSender

    def replies_in(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.posted(channel) if m.get("thread_ts") == thread_ts]

    async def wait_replies(
        self, channel: str, thread_ts: str, count: int = 1, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        await self.slack.wait_for(
            lambda: len(self.replies_in(channel, thread_ts)) >= count, timeout=timeout
        )
        return self.replies_in(channel, thread_ts)

    async def conversation_of(self, thread: ThreadKey) -> ConversationReadFull:
        record = await self.runtime.bridge.threads.get(thread)
        assert record is not None, f"no conversation for {thread}"
        return await self.runtime.engage.get_conversation(record.conversation_id)


def e2e_settings(slack: FakeSlack, engage: Any, *, socket_mode: bool, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "engage_api_url": engage.url,
        "engage_api_key": engage.api_key,
        "engage_org_id": engage.org_id,
        "http_port": 0,
        "web_enabled": False,
        "worker_block_seconds": 0.2,
        "lease_seconds": 5.0,
        "claim_idle_seconds": 10.0,
        "agent_backoff_seconds": 0.05,
        "agent_backoff_max_seconds": 0.2,
        "file": FileConfig(
            routing=Routing(
                default_agent="parrot", channels={"C0PENSIONS": "pensions-questions-latest"}
            )
        ),
    }
    values.update(overrides)
    return slack_settings(slack, socket_mode=socket_mode, **values)


@asynccontextmanager
async def slack_bridge(
    slack: FakeSlack, engage: Any, redis: Any, *, socket_mode: bool = False, **overrides: Any
) -> AsyncIterator[SlackBridge]:
    settings = e2e_settings(slack, engage, socket_mode=socket_mode, **overrides)
    adapter = create_adapter(settings, redis)
    async with BridgeRuntime(settings, adapters=[adapter], redis=redis) as runtime:
        assert runtime.http_url is not None
        sender = EventSender(f"{runtime.http_url}/slack/events", slack.signing_secret)
        try:
            if socket_mode:
                await asyncio.wait_for(slack.socket_connected.wait(), timeout=10)
            yield SlackBridge(runtime, slack, adapter, sender)
        finally:
            await sender.aclose()
