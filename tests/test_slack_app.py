"""The Bolt wiring: nothing is acknowledged that was not stored; start-up checks the token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette

from adapters.slack import SlackAdapter, create_adapter
from bridge.config import Staff
from bridge.errors import ConfigError, StorageUnavailable
from bridge.http import HttpServer
from bridge.models import InboundMessage, Origin, SubmitResult, ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import EventSender, envelope, slash_command, user_message
from tests.fixtures_slack import slack_settings

MANIFEST = Path(__file__).parent.parent / "deploy" / "slack-app-manifest.yaml"


class FailingInbox:
    def __init__(self) -> None:
        self.tried = asyncio.Event()

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.tried.set()
        raise StorageUnavailable("redis is down")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return False


class RecordingInbox:
    """Stores messages; the first `failures` submits raise as if Redis were down."""

    def __init__(self, failures: int = 0) -> None:
        self.messages: list[InboundMessage] = []
        self.failures = failures
        self.tried = asyncio.Event()

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.tried.set()
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("redis is down")
        self.messages.append(message)
        return SubmitResult(accepted=True, reason="stored")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return False


async def serve(adapter: SlackAdapter, inbox: Any) -> AsyncIterator[str]:
    server = HttpServer("127.0.0.1", 0)
    await server.start(Starlette(routes=list(adapter.routes(inbox))))
    try:
        yield f"{server.url}/slack/events"
    finally:
        await server.stop()


@pytest.fixture
async def adapter(fake_slack: FakeSlack, redis_client: Any) -> AsyncIterator[SlackAdapter]:
    slack_adapter = create_adapter(slack_settings(fake_slack), redis_client)
    await slack_adapter.start()
    yield slack_adapter
    await slack_adapter.aclose()


async def test_an_event_that_could_not_be_stored_is_answered_503_so_slack_retries(
    fake_slack: FakeSlack, adapter: SlackAdapter
) -> None:
    async for url in serve(adapter, FailingInbox()):
        sender = EventSender(url, fake_slack.signing_secret)
        event = user_message(fake_slack, channel="D1", channel_type="im", text="hi")
        delivery = await sender.send(envelope(fake_slack, event))
        await sender.aclose()
        # Like the desk and the playground: storage trouble is 503, not a 500 with a traceback.
        assert delivery.status == 503


async def test_slash_command_that_could_not_be_stored_says_so(
    fake_slack: FakeSlack, adapter: SlackAdapter
) -> None:
    async for url in serve(adapter, FailingInbox()):
        sender = EventSender(url, fake_slack.signing_secret)
        link = "https://acme.slack.com/archives/C0001/p1712345678000100"
        delivery = await sender.send_command(slash_command(fake_slack, f"reset {link}"))
        await sender.aclose()
        assert delivery.status == 200
        assert "could not take that command" in delivery.body


async def test_every_event_type_is_acknowledged_even_without_a_use(
    fake_slack: FakeSlack, adapter: SlackAdapter
) -> None:
    inbox = RecordingInbox()
    async for url in serve(adapter, inbox):
        sender = EventSender(url, fake_slack.signing_secret)
        for event in (
            {"type": "assistant_thread_started", "event_ts": "1.2"},
            {"type": "member_joined_channel", "user": "U1", "channel": "C1", "event_ts": "1.3"},
            {"type": "app_home_opened", "user": "U1", "channel": "D1", "event_ts": "1.4"},
        ):
            assert (await sender.send(envelope(fake_slack, event))).status == 200
        await sender.aclose()
    assert inbox.messages == []


async def test_a_burst_on_a_fresh_adapter_asks_slack_who_the_bot_is_once(
    fake_slack: FakeSlack, adapter: SlackAdapter
) -> None:
    # Bolt's authorization would call auth.test for every event that arrives before its first
    # answer; the adapter's own call at start answers it.
    assert len(fake_slack.calls_to("auth.test")) == 1
    inbox = RecordingInbox()
    async for url in serve(adapter, inbox):
        sender = EventSender(url, fake_slack.signing_secret)
        events = [user_message(fake_slack, channel="D1", channel_type="im") for _ in range(20)]
        deliveries = await asyncio.gather(*(sender.send(envelope(fake_slack, e)) for e in events))
        await sender.aclose()
    assert [d.status for d in deliveries] == [200] * 20
    assert len(inbox.messages) == 20
    assert len(fake_slack.calls_to("auth.test")) == 1


class GatedInbox(RecordingInbox):
    """Holds every submit until `expected` of them are in flight at once."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.in_flight = 0
        self.all_in = asyncio.Event()

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.in_flight += 1
        if self.in_flight >= self.expected:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), 20)
        return await super().submit(message)


async def test_a_burst_is_stored_concurrently_on_an_auto_pipelined_redis(
    fake_slack: FakeSlack, adapter: SlackAdapter
) -> None:
    # The fixture's client is the runtime's (bridge.redismux on a single Redis): submits take
    # no pool connection, so a burst is not stored 48 at a time.
    inbox = GatedInbox(expected=100)
    async for url in serve(adapter, inbox):
        sender = EventSender(url, fake_slack.signing_secret)
        events = [user_message(fake_slack, channel="D1", channel_type="im") for _ in range(100)]
        deliveries = await asyncio.gather(*(sender.send(envelope(fake_slack, e)) for e in events))
        await sender.aclose()
    assert [d.status for d in deliveries] == [200] * 100
    assert inbox.all_in.is_set()
    assert len(inbox.messages) == 100


async def test_socket_mode_envelope_is_not_acked_when_storing_fails(
    fake_slack: FakeSlack, redis_client: Any
) -> None:
    adapter = create_adapter(slack_settings(fake_slack, socket_mode=True), redis_client)
    await adapter.start()
    inbox = FailingInbox()
    task = asyncio.create_task(adapter.run(inbox))
    try:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
        failing = await fake_slack.push(
            envelope(fake_slack, user_message(fake_slack, channel="D1", channel_type="im"))
        )
        other = {"type": "app_home_opened", "user": "U1", "event_ts": "1.5"}
        probe = await fake_slack.push(envelope(fake_slack, other))
        await asyncio.wait_for(inbox.tried.wait(), 10)
        # Envelopes run concurrently: once a later one is acked, the failed one had its chance.
        await asyncio.wait_for(probe.acked.wait(), 10)
        assert not failing.acked.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await adapter.aclose()


async def test_socket_mode_envelope_redelivered_after_a_storage_failure_is_stored_then_acked(
    fake_slack: FakeSlack, redis_client: Any
) -> None:
    adapter = create_adapter(slack_settings(fake_slack, socket_mode=True), redis_client)
    await adapter.start()
    inbox = RecordingInbox(failures=1)
    task = asyncio.create_task(adapter.run(inbox))
    try:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
        event = user_message(fake_slack, channel="D1", channel_type="im", text="keep me")
        pushed = await fake_slack.push(envelope(fake_slack, event))
        await asyncio.wait_for(inbox.tried.wait(), 10)
        [again] = await fake_slack.redeliver_unacked()
        assert again is pushed
        await asyncio.wait_for(pushed.acked.wait(), 10)
        assert [m.text for m in inbox.messages] == ["keep me"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await adapter.aclose()


async def test_staff_from_settings_and_user_groups_are_marked_staff(
    fake_slack: FakeSlack, redis_client: Any
) -> None:
    fake_slack.usergroups["S0SUPPORT"] = ["U0GROUPED"]
    settings = slack_settings(fake_slack)
    settings.file.staff = Staff(slack_user_ids=["U0LISTED"], slack_usergroup_ids=["S0SUPPORT"])
    adapter = create_adapter(settings, redis_client)
    await adapter.start()
    inbox = RecordingInbox()
    try:
        async for url in serve(adapter, inbox):
            sender = EventSender(url, fake_slack.signing_secret)
            for user in ("U0LISTED", "U0GROUPED", "U0CUSTOMER"):
                event = user_message(fake_slack, user=user, thread_ts="1712345678.000100")
                assert (await sender.send(envelope(fake_slack, event))).status == 200
            await sender.aclose()
    finally:
        await adapter.aclose()
    assert [m.origin for m in inbox.messages] == [Origin.STAFF, Origin.STAFF, Origin.USER]


async def test_start_with_a_rejected_token_is_a_config_error(
    fake_slack: FakeSlack, redis_client: Any
) -> None:
    settings = slack_settings(fake_slack, credentials={"bot_token": "xoxb-revoked"})
    with pytest.raises(ConfigError, match="invalid_auth"):
        await create_adapter(settings, redis_client).start()


PAYLOADS = Path(__file__).parent / "payloads" / "slack"
RECORDED = {
    "app_mention": "app_mention.json",
    "message": "message_plain.json",
    "assistant_thread_started": "assistant_thread_started.json",
    "assistant_thread_context_changed": "assistant_thread_context_changed.json",
    "reaction_added": "reaction_added.json",
    "reaction_removed": "reaction_removed.json",
}


def manifest_event_types() -> list[str]:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    return sorted({e.split(".")[0] for e in events})


@pytest.mark.parametrize("event_type", manifest_event_types())
async def test_every_event_type_the_manifest_subscribes_is_acknowledged(
    fake_slack: FakeSlack, adapter: SlackAdapter, event_type: str
) -> None:
    async for url in serve(adapter, RecordingInbox()):
        sender = EventSender(url, fake_slack.signing_secret)
        body = json.loads((PAYLOADS / RECORDED[event_type]).read_text(encoding="utf-8"))
        delivery = await sender.send(body)
        await sender.aclose()
        assert delivery.status == 200


async def test_socket_mode_with_a_rejected_app_token_is_a_config_error(
    fake_slack: FakeSlack, redis_client: Any
) -> None:
    settings = slack_settings(fake_slack, socket_mode=True, credentials={"app_token": "xapp-wrong"})
    adapter = create_adapter(settings, redis_client)
    with pytest.raises(ConfigError, match="app token: invalid_auth"):
        await adapter.start()


def test_neither_signing_secret_nor_app_token_is_a_config_error(
    fake_slack: FakeSlack, redis_client: Any
) -> None:
    settings = slack_settings(fake_slack, credentials={"signing_secret": None})
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        create_adapter(settings, redis_client)
