"""End to end over Socket Mode: the real aiohttp Socket Mode client and the fake's WebSocket."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bridge.models import ThreadKey
from tests.fakes.slack import Envelope, FakeSlack
from tests.fakes.slack_events import as_mention, envelope, slash_command, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_emulator import hold_answers, release_answers
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    async with slack_bridge(fake_slack, emulator, redis_client, socket_mode=True) as running:
        yield running


async def acked(envelope: Envelope, timeout: float = 5.0) -> float:
    """Seconds until the envelope was acknowledged."""
    started = time.monotonic()
    await asyncio.wait_for(envelope.acked.wait(), timeout)
    return time.monotonic() - started


async def mention(b: SlackBridge, text: str, **kwargs: Any) -> dict[str, Any]:
    message = user_message(b.slack, text=f"<@{b.slack.bot_user_id}> {text}", **kwargs)
    for event in (message, as_mention(b.slack, message)):
        assert await acked(await b.slack.push(envelope(b.slack, event))) < 3.0
    return message


async def test_mention_follow_up_and_dm_over_socket_mode(bridge: SlackBridge) -> None:
    root = await mention(bridge, "over the socket")
    [reply] = await bridge.wait_replies("C0001", root["ts"])
    assert reply["text"] == "You said: over the socket"
    follow_up = user_message(bridge.slack, text="more", thread_ts=root["ts"])
    await acked(await bridge.slack.push(envelope(bridge.slack, follow_up)))
    replies = await bridge.wait_replies("C0001", root["ts"], count=2)
    assert replies[1]["text"] == "You said: more"
    dm = user_message(bridge.slack, channel="D0001", channel_type="im", text="private")
    await acked(await bridge.slack.push(envelope(bridge.slack, dm)))
    await bridge.wait_replies("D0001", dm["ts"])
    thread = ThreadKey("slack", bridge.slack.team_id, "C0001", root["ts"])
    conversation = await bridge.conversation_of(thread)
    assert conversation.source == "slack"
    assert conversation.data["ticket_id"] == root["ts"]
    assert len(bridge.replies_in("C0001", root["ts"])) == 2


async def test_envelopes_are_acked_fast_while_the_agent_is_slow(
    bridge: SlackBridge, emulator: Any
) -> None:
    hold_answers(emulator)  # the agent is at work while both envelopes are acked
    root = await mention(bridge, "slow over the socket")
    await wait_until(lambda: emulator.faults.answers_held == 1)
    release_answers(emulator)
    await bridge.wait_replies("C0001", root["ts"], timeout=30)
    assert len(bridge.replies_in("C0001", root["ts"])) == 1


async def test_disconnect_then_reconnect_keeps_answering(bridge: SlackBridge) -> None:
    before = await mention(bridge, "before")
    await bridge.wait_replies("C0001", before["ts"])
    opened = bridge.slack.connections_opened
    await bridge.slack.disconnect()
    assert bridge.slack.connections_opened == opened + 1
    after = await mention(bridge, "after")
    [reply] = await bridge.wait_replies("C0001", after["ts"])
    assert reply["text"] == "You said: after"
    assert bridge.slack.unacked() == []


async def test_a_burst_of_300_envelopes_loses_nothing(bridge: SlackBridge) -> None:
    roots = [await mention_root(bridge, i) for i in range(10)]
    events = []
    for n in range(300):
        root = roots[n % len(roots)]
        text = f"<@{bridge.slack.bot_user_id}> burst message {n}"
        events.append(envelope(bridge.slack, user_message(bridge.slack, text=text, thread_ts=root)))
    envelopes = await bridge.slack.push_many(events)
    await asyncio.wait_for(asyncio.gather(*(e.acked.wait() for e in envelopes)), timeout=60)
    assert bridge.slack.unacked() == []
    expected = {f"burst message {n}" for n in range(300)}

    def answered() -> set[str]:
        seen = set()
        for root in roots:
            for reply in bridge.replies_in("C0001", root):
                text = reply["text"]
                seen.update(line.removeprefix("You said:").strip() for line in text.splitlines())
        return seen & expected

    await bridge.slack.wait_for(lambda: answered() == expected, timeout=90)


async def mention_root(bridge: SlackBridge, i: int) -> str:
    root = await mention(bridge, f"root {i}")
    await bridge.wait_replies("C0001", root["ts"])
    return str(root["ts"])


async def test_slash_command_over_socket_mode_is_acked_with_a_response(
    bridge: SlackBridge,
) -> None:
    root = await mention(bridge, "hello")
    await bridge.wait_replies("C0001", root["ts"])
    link = f"https://acme.slack.com/archives/C0001/p{root['ts'].replace('.', '')}"
    env = await bridge.slack.push(slash_command(bridge.slack, f"status {link}"), "slash_commands")
    assert await acked(env) < 3.0
    assert env.ack_payload is not None
    assert "received" in env.ack_payload["text"]
    await bridge.wait_replies("C0001", root["ts"], count=2)
