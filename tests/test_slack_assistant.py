"""Slack AI-app surfaces over real Bolt: suggested prompts, title, the viewed channel as context."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.models import ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow
DM, THREAD = "D0001", "1712345780.001200"


def assistant_event(slack: FakeSlack, kind: str, viewing: str | None) -> dict[str, Any]:
    context = {"channel_id": viewing, "team_id": slack.team_id} if viewing else {}
    return {
        "type": kind,
        "assistant_thread": {
            "user_id": "U0001",
            "context": context,
            "channel_id": DM,
            "thread_ts": THREAD,
        },
        "event_ts": slack.next_ts(),
    }


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    async with slack_bridge(fake_slack, emulator, redis_client) as running:
        yield running


async def start(b: SlackBridge, viewing: str | None = "C0001") -> None:
    event = assistant_event(b.slack, "assistant_thread_started", viewing)
    assert (await b.events.send(envelope(b.slack, event))).status == 200


async def test_a_new_assistant_thread_gets_prompts_and_the_agents_title(
    bridge: SlackBridge, emulator: Any
) -> None:
    await start(bridge)
    parrot = emulator.state.agents["parrot"].metadata
    [prompt] = bridge.slack.assistant.prompts[(DM, THREAD)]
    assert prompt["title"] == "What can you help me with?"
    assert parrot.description in prompt["message"]
    assert bridge.slack.assistant.titles[(DM, THREAD)] == parrot.title


async def test_configured_prompts_are_offered_at_most_four(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = ["When can I retire?", "What is a SIPP?", "How much can I pay in?", "Fees?", "More?"]
    monkeypatch.setenv("ENGAGE_BRIDGE_SLACK_SUGGESTED_PROMPTS", str(prompts).replace("'", '"'))
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        await start(b)
    offered = fake_slack.assistant.prompts[(DM, THREAD)]
    assert [p["message"] for p in offered] == prompts[:4]


async def test_a_refused_setup_still_acknowledges_the_event(bridge: SlackBridge) -> None:
    bridge.slack.assistant.refuse_with = "missing_scope"
    await start(bridge)
    assert bridge.slack.assistant.prompts == {}


async def test_the_viewed_channel_reaches_the_conversation_and_follows_changes(
    bridge: SlackBridge,
) -> None:
    await start(bridge, viewing="C0001")
    asked = user_message(
        bridge.slack, channel=DM, channel_type="im", thread_ts=THREAD, text="summarise this"
    )
    assert (await bridge.events.send(envelope(bridge.slack, asked))).status == 200
    await bridge.wait_replies(DM, THREAD)
    thread = ThreadKey("slack", bridge.slack.team_id, DM, THREAD)
    data = (await bridge.conversation_of(thread)).data
    assert data["slack_context_channel_id"] == "C0001"
    assert data["channel_id"] == DM  # the core's own fields win
    changed = assistant_event(bridge.slack, "assistant_thread_context_changed", "C0002")
    assert (await bridge.events.send(envelope(bridge.slack, changed))).status == 200
    data = (await bridge.conversation_of(thread)).data
    assert data["slack_context_channel_id"] == "C0002"
    assert data["thread_key"] == str(thread)


async def test_a_context_noted_before_the_upgrade_still_reaches_the_conversation(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    # Up to session 4 the viewed channel was kept as `{thread}:slack:assistant-context` (30
    # days); an assistant thread opened then and asked after the upgrade keeps its context.
    thread = ThreadKey("slack", fake_slack.team_id, DM, THREAD)
    old = "{" + str(thread) + "}:slack:assistant-context"
    viewed = {"slack_context_channel_id": "C0009", "slack_context_team_id": fake_slack.team_id}
    await redis_client.hset(old, mapping=viewed)
    await redis_client.expire(old, 30 * 24 * 3600)

    async with slack_bridge(fake_slack, emulator, redis_client) as b:

        async def adopted() -> bool:
            return not await redis_client.exists(old)

        await wait_until(adopted)
        asked = user_message(b.slack, channel=DM, channel_type="im", thread_ts=THREAD, text="hi")
        assert (await b.events.send(envelope(b.slack, asked))).status == 200
        await b.wait_replies(DM, THREAD)
        data = (await b.conversation_of(thread)).data

    assert data["slack_context_channel_id"] == "C0009"
    assert data["slack_context_team_id"] == fake_slack.team_id
    assert data["channel_id"] == DM
