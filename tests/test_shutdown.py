"""Shutting down under load: requests in flight finish against open adapters, nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bridge.models import InboundMessage, SubmitResult
from bridge.runtime import BridgeRuntime
from tests.fakes.slack import FakeSlack, Workspace
from tests.fakes.slack_events import EventSender, envelope, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_slack import slack_bridge
from tests.test_slack_oauth import ACME, oauth_bridge

pytestmark = pytest.mark.slow


async def refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


@asynccontextmanager
async def one_workspace(
    slack: FakeSlack, engage: Any, redis: Any, oauth: bool
) -> AsyncIterator[tuple[BridgeRuntime, Workspace]]:
    """A running bridge with one Slack workspace: its bot token, or (OAuth) installed and
    answered once already, so its Web API client (on the adapter's session) exists."""
    if not oauth:
        async with slack_bridge(slack, engage, redis) as running:
            yield running.runtime, slack.home
        return
    async with oauth_bridge(slack, engage, redis) as running:
        await running.install(ACME)
        ts = await running.mention(ACME, ACME.team_id, "C0ACME", "warm up")
        await slack.wait_for(lambda: len(running.replies("C0ACME", ts)) == 1)
        yield running.runtime, ACME


@pytest.mark.parametrize("oauth", [False, True], ids=["bot-token", "oauth"])
async def test_shutdown_with_requests_in_flight_stores_acks_and_signs_them_without_a_traceback(
    fake_slack: FakeSlack,
    emulator: Any,
    redis_client: Any,
    caplog: pytest.LogCaptureFixture,
    oauth: bool,
) -> None:
    caplog.set_level(logging.INFO)
    count = 4
    running = one_workspace(fake_slack, emulator, redis_client, oauth)
    runtime, workspace = await running.__aenter__()
    messages = [
        user_message(
            fake_slack, channel="D0STOP", channel_type="im", team=workspace.team_id, text=f"m{n}"
        )
        for n in range(2 * count)
    ]
    assert runtime.http_url is not None
    port = int(runtime.http_url.rsplit(":", 1)[1])
    # A sender of its own: the fixture's closes as its block ends, before the runtime stops.
    sender = EventSender(f"{runtime.http_url}/slack/events", fake_slack.signing_secret)
    try:
        # Half the requests are acked, their accept signs still waiting for Slack's answer...
        signs = fake_slack.hold("assistant.threads.setStatus")
        deliveries = [
            asyncio.create_task(sender.send(envelope(fake_slack, m, workspace)))
            for m in messages[:count]
        ]
        await wait_until(lambda: fake_slack.held.get("assistant.threads.setStatus") == count)
        # ...the other half not yet stored, until shutdown has begun.
        stored = asyncio.Event()
        held = 0
        accept = runtime.bridge.inbox.accept

        async def held_accept(message: InboundMessage) -> tuple[SubmitResult, bool]:
            nonlocal held
            held += 1
            await stored.wait()
            return await accept(message)

        runtime.bridge.inbox.accept = held_accept  # type: ignore[method-assign]
        deliveries += [
            asyncio.create_task(sender.send(envelope(fake_slack, m, workspace)))
            for m in messages[count:]
        ]
        await wait_until(lambda: held == count)
        stopping = asyncio.create_task(running.__aexit__(None, None, None))
        await wait_until(lambda: refuses_connections(port))  # no new requests are taken
        stored.set()
        signs.set()
        await asyncio.wait_for(stopping, timeout=30)
        statuses = [(await d).status for d in deliveries]
    finally:
        await sender.aclose()
    # Each request in flight was stored, then acked: none is lost.
    assert statuses == [200] * (2 * count)
    assert await runtime.bridge.queue_depth() == 2 * count
    # Each one's accept sign was shown, through an adapter still open.
    signed = {ts for _, ts, status in fake_slack.statuses if status}
    assert signed >= {m["ts"] for m in messages}
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == []
