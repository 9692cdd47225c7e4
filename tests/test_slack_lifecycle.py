"""The support lifecycle on the Slack path: a staff member's post hands a thread to a human."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.config import FileConfig, Routing, Staff
from bridge.models import ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import as_mention, envelope, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow
STAFF = "U0STAFF"


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> AsyncIterator[Any]:
    config = FileConfig(
        routing=Routing(default_agent="parrot"), staff=Staff(slack_user_ids=[STAFF])
    )
    async with slack_bridge(fake_slack, emulator, redis_client, file=config) as running:
        yield running


async def post(b: SlackBridge, text: str, *, mention: bool = False, **kw: Any) -> dict[str, Any]:
    if mention:
        text = f"<@{b.slack.bot_user_id}> {text}"
    message = user_message(b.slack, text=text, **kw)
    events = [message, as_mention(b.slack, message)] if mention else [message]
    for event in events:
        assert (await b.events.send(envelope(b.slack, event))).status == 200
    return message


def conversation(emulator: Any) -> Any:
    [found] = [c for c in emulator.state.conversations.values() if c.source == "slack"]
    return found


def runs(emulator: Any) -> int:
    return len(emulator.state.runs)


async def test_slack_thread_walks_bot_human_resolved_reopened(
    bridge: SlackBridge, emulator: Any
) -> None:
    root = await post(bridge, "how do pensions work?", mention=True)
    ts = root["ts"]
    await bridge.wait_replies("C0001", ts, 1)
    assert runs(emulator) == 1
    thread = ThreadKey("slack", bridge.slack.team_id, "C0001", ts)

    await post(bridge, "I'll take this one.", user=STAFF, thread_ts=ts)
    await wait_until(lambda: conversation(emulator).data.get("status") == "human")
    data = conversation(emulator).data
    assert data["assignee"] == STAFF
    assert data["thread_key"] == str(thread)
    assert conversation(emulator).source == "slack"
    replies = await bridge.wait_replies("C0001", ts, 2)
    assert "Handing this thread over" in replies[1]["text"]

    await post(bridge, "are you a human now?", thread_ts=ts)
    await wait_until(
        lambda: any(m.content == "are you a human now?" for m in conversation(emulator).messages)
    )
    assert runs(emulator) == 1
    assert len(bridge.replies_in("C0001", ts)) == 2

    await post(bridge, "resolve", mention=True, user=STAFF, thread_ts=ts)
    await wait_until(lambda: conversation(emulator).data.get("status") == "resolved")
    await bridge.wait_replies("C0001", ts, 3)
    assert runs(emulator) == 1

    await post(bridge, "it broke again", thread_ts=ts)
    await wait_until(lambda: conversation(emulator).data.get("status") == "bot")
    replies = await bridge.wait_replies("C0001", ts, 5)
    # Messages recorded while human are history the agent now answers with (parrot repeats all).
    assert replies[-1]["text"].endswith("it broke again")
    assert runs(emulator) == 2
    record = await bridge.runtime.bridge.threads.get(thread)
    assert record is not None
    assert record.status == "bot"
