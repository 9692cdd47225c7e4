"""Fixtures for the desk tests: a fake helpdesk receiving callbacks, and signed event builders."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.desk import create_adapter as create_desk_adapter
from adapters.desk.settings import DeskSettings
from adapters.desk.signing import signed_headers
from adapters.web import create_adapter as create_web_adapter
from adapters.web.settings import WebSettings
from bridge.adapter import Adapter
from bridge.config import FileConfig, Routing, Settings
from bridge.engage.client import EngageClient
from bridge.platforms import PlatformSettings
from bridge.runtime import BridgeRuntime
from tests.fakes.desk import FakeDesk
from tests.fixtures_core import core_settings

DESK_SECRET = "desk-webhook-secret"
CALLBACK_SECRET = "desk-callback-secret"

_event_ids = itertools.count(1)


def desk_event(
    type_: str = "ticket.created",
    *,
    ticket_id: str = "T-100",
    account_id: str = "acme",
    body: str | None = "How do I change my pension contributions?",
    author_id: str = "cust-1",
    author_role: str = "customer",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid desk event; `body=None` leaves the comment out."""
    event: dict[str, Any] = {
        "id": event_id or f"evt-{next(_event_ids)}-{time.monotonic_ns()}",
        "type": type_,
        "occurred_at": "2026-11-27T06:00:00Z",
        "account_id": account_id,
        "ticket": {
            "id": ticket_id,
            "subject": "Pension contributions",
            "requester": {"id": "cust-1", "name": "Ann Customer"},
        },
    }
    if body is not None:
        event["comment"] = {
            "id": f"c-{event['id']}",
            "author": {"id": author_id, "name": "Someone", "role": author_role},
            "body": body,
        }
    event.update(extra)
    return event


def signed(
    event: dict[str, Any] | bytes, *, secret: str = DESK_SECRET, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of a signed webhook delivery."""
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    return raw, signed_headers(secret, int(time.time()) if at is None else at, raw)


@pytest.fixture
async def fake_desk() -> AsyncIterator[FakeDesk]:
    desk = FakeDesk(secret=CALLBACK_SECRET)
    await desk.start()
    yield desk
    await desk.close()


def bridge_settings(
    tmp_path: Path,
    emulator: Any,
    *,
    desk_callback_url: str | None = None,
    platforms: Sequence[PlatformSettings] = (),
    **overrides: Any,
) -> Settings:
    """Settings for a whole bridge in-process: ephemeral HTTP port, the test emulator, fast
    worker timings (see tests/fixtures_core.py), the desk's secrets; `platforms` add to (or
    replace) the desk's settings."""
    desk = DeskSettings(
        _env_file=None,
        signing_secret=DESK_SECRET,
        callback_secret=CALLBACK_SECRET,
        callback_url=desk_callback_url,
    )
    values: dict[str, Any] = {
        "http_port": 0,
        "data_dir": tmp_path / "data",
        "engage_api_url": emulator.url,
        "engage_api_key": emulator.api_key,
        "engage_org_id": emulator.org_id,
        "platforms": [desk, *platforms],
        **overrides,
    }
    return core_settings(**values)


@asynccontextmanager
async def bridge_runtime(
    settings: Settings, redis: aioredis.Redis, emulator: Any, adapters: Sequence[Adapter]
) -> AsyncIterator[BridgeRuntime]:
    """The real runtime (HTTP server, workers) with the given adapters, on the test emulator."""
    engage = EngageClient(
        base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id, max_attempts=2
    )
    try:
        async with BridgeRuntime(settings, adapters=adapters, redis=redis, engage=engage) as rt:
            yield rt
    finally:
        await engage.aclose()


@pytest.fixture
async def desk_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_desk: FakeDesk
) -> AsyncIterator[BridgeRuntime]:
    """A running bridge with the desk adapter, answering through `fake_desk`."""
    settings = bridge_settings(tmp_path, emulator, desk_callback_url=fake_desk.url)
    desk = create_desk_adapter(settings)
    async with bridge_runtime(settings, redis_client, emulator, [desk]) as rt:
        yield rt


@pytest.fixture
def web_agent() -> str:
    """The agent answering in `web_bridge`; override with `@pytest.mark.parametrize`."""
    return "parrot"


def web_settings(**values: Any) -> WebSettings:
    """The web pages' settings from `values` only (no environment, no .env file)."""
    return WebSettings(_env_file=None, **values)


@pytest.fixture
def web_options() -> dict[str, Any]:
    """Extra `web_bridge` settings: `http_host`, and `web` (WebSettings values)."""
    return {}


@pytest.fixture
async def web_bridge(
    tmp_path: Path,
    redis_client: aioredis.Redis,
    emulator: Any,
    web_agent: str,
    web_options: dict[str, Any],
) -> AsyncIterator[BridgeRuntime]:
    """A running bridge with the web playground and operator view (the web fixtures live here
    too: conftest registers one plugin per area, and the desk/web area is one)."""
    routing = FileConfig(routing=Routing(default_agent=web_agent))
    options = dict(web_options)
    web = web_settings(**options.pop("web", {}))
    settings = bridge_settings(tmp_path, emulator, file=routing, **options)
    async with bridge_runtime(
        settings, redis_client, emulator, [create_web_adapter(settings, redis_client, web)]
    ) as rt:
        yield rt
