"""A Redis at maxmemory (noeviction) refuses writes: Slack gets 503 and /readyz says not ready."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.redisconn import connect_redis
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, user_message
from tests.fixtures_slack import slack_bridge
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    # Its own server: the test fills it up, which would break every other test sharing one.
    server = RedisServer("--maxmemory-policy", "noeviction")
    server.start()
    yield server
    server.close()


async def test_a_full_redis_is_503_on_slack_and_fails_readyz(
    fake_slack: FakeSlack, emulator: Any, own_redis: RedisServer
) -> None:
    redis = connect_redis(own_redis.url, cluster=False)
    try:
        async with slack_bridge(fake_slack, emulator, redis) as bridge:
            assert bridge.runtime.http_url is not None
            async with httpx.AsyncClient(base_url=bridge.runtime.http_url) as http:
                before = await http.get("/readyz")
                # Below what Redis already uses: every write is refused with an OOM error.
                await redis.config_set("maxmemory", "1")
                try:
                    dm = user_message(fake_slack, channel="D1", channel_type="im", text="hi")
                    delivery = await bridge.events.send(envelope(fake_slack, dm))
                    ready = await http.get("/readyz")
                finally:
                    await redis.config_set("maxmemory", "0")
    finally:
        await redis.aclose()
    assert before.status_code == 200, before.text
    assert delivery.status == 503
    assert ready.status_code == 503
    assert "OutOfMemoryError" in ready.json()["checks"]["redis"]
