"""Fixtures for the Zendesk and Chatwoot tests: the fake desks, bridges answering through them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.chatwoot import ChatwootAdapter
from adapters.chatwoot.settings import ChatwootSettings
from adapters.helpdesk import RetryPolicy
from adapters.zendesk import ZendeskAdapter
from adapters.zendesk.settings import ZendeskSettings
from bridge.config import FileConfig, Routing
from bridge.runtime import BridgeRuntime
from tests.fakes.chatwoot import FakeChatwoot
from tests.fakes.zendesk import FakeZendesk
from tests.fixtures_desk import bridge_runtime, bridge_settings

ZENDESK_SECRET = "zendesk-webhook-secret"
FAST_RETRY = RetryPolicy(attempts=5, base=0.05, cap=0.4)


PAYLOADS = Path(__file__).parent / "payloads"


def recorded(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded payload (`tests/payloads/<name>.json`) with `a__b=value` changes applied."""
    payload: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    for path, value in changes.items():
        target = payload
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return payload


async def drained(redis: aioredis.Redis) -> bool:
    """No thread waits for a worker and no inbox holds a message."""
    if await redis.xlen("bridge:ready"):
        return False
    return not [k async for k in redis.scan_iter(match="*:inbox")]


def parrot_settings(tmp_path: Path, emulator: Any) -> Any:
    """Bridge settings whose agent is the emulator's `parrot` (answers `You said: <text>`)."""
    return bridge_settings(
        tmp_path, emulator, file=FileConfig(routing=Routing(default_agent="parrot"))
    )


@pytest.fixture
async def zendesk() -> AsyncIterator[FakeZendesk]:
    desk = FakeZendesk(webhook_secret=ZENDESK_SECRET)
    await desk.start()
    yield desk
    await desk.close()


def zendesk_config(desk: FakeZendesk) -> ZendeskSettings:
    return ZendeskSettings(
        webhook_secret=desk.webhook_secret,
        url=desk.url,
        email=desk.email,
        api_token=desk.api_token,
        bot_user_id=str(desk.bot_user_id),
    )


@pytest.fixture
async def zendesk_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, zendesk: FakeZendesk
) -> AsyncIterator[BridgeRuntime]:
    """A running bridge with the Zendesk adapter; the fake's webhook points at it."""
    adapter = ZendeskAdapter(zendesk_config(zendesk), retry=FAST_RETRY)
    settings = parrot_settings(tmp_path, emulator)
    async with bridge_runtime(settings, redis_client, emulator, [adapter]) as rt:
        zendesk.webhook_url = f"{rt.http_url}/zendesk/webhook"
        yield rt


CHATWOOT_TOKEN = "cw-url-token-0123456789"
CHATWOOT_SECRET = "cw-bot-secret-0123456789"


@pytest.fixture
async def chatwoot() -> AsyncIterator[FakeChatwoot]:
    desk = FakeChatwoot(bot_secret=CHATWOOT_SECRET)
    await desk.start()
    yield desk
    await desk.close()


def chatwoot_config(desk: FakeChatwoot, **overrides: Any) -> ChatwootSettings:
    values: dict[str, Any] = {
        "webhook_token": CHATWOOT_TOKEN,
        "webhook_secret": desk.bot_secret,
        "url": desk.url,
        "bot_token": desk.bot_token,
        **overrides,
    }
    return ChatwootSettings(**values)


@pytest.fixture
def chatwoot_overrides() -> dict[str, Any]:
    """Extra ChatwootSettings for `chatwoot_bridge`; override with `@pytest.mark.parametrize`."""
    return {}


@pytest.fixture
async def chatwoot_bridge(
    tmp_path: Path,
    redis_client: aioredis.Redis,
    emulator: Any,
    chatwoot: FakeChatwoot,
    chatwoot_overrides: dict[str, Any],
) -> AsyncIterator[BridgeRuntime]:
    """A running bridge with the Chatwoot adapter; the fake's Agent Bot posts to it."""
    adapter = ChatwootAdapter(chatwoot_config(chatwoot, **chatwoot_overrides), retry=FAST_RETRY)
    settings = parrot_settings(tmp_path, emulator)
    async with bridge_runtime(settings, redis_client, emulator, [adapter]) as rt:
        chatwoot.outgoing_url = f"{rt.http_url}/chatwoot/webhook/{CHATWOOT_TOKEN}"
        yield rt
