"""End to end over the Events API: signed POSTs, real Bolt, Redis, emulator, fake Slack."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest

from bridge.models import ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import as_mention, envelope, slash_command, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_emulator import hold_answers, release_answers
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow
PENSIONS_CHANNEL = "C0PENSIONS"  # routed to the emulator agent that streams status messages


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    async with slack_bridge(fake_slack, emulator, redis_client) as running:
        yield running


async def mention(b: SlackBridge, text: str, **kwargs: Any) -> dict[str, Any]:
    """Deliver one @-mention as Slack does: the `message` and its `app_mention` twin."""
    message = user_message(b.slack, text=f"<@{b.slack.bot_user_id}> {text}", **kwargs)
    for event in (message, as_mention(b.slack, message)):
        delivery = await b.events.send(envelope(b.slack, event))
        assert delivery.status == 200
    return message


def key(slack: FakeSlack, event: dict[str, Any]) -> ThreadKey:
    return ThreadKey(
        "slack", slack.team_id, event["channel"], event.get("thread_ts") or event["ts"]
    )


async def test_mention_starts_a_conversation_and_the_reply_lands_in_its_thread(
    bridge: SlackBridge,
) -> None:
    root = await mention(bridge, "how do pensions work?")
    [reply] = await bridge.wait_replies("C0001", root["ts"])
    assert reply["text"] == "You said: how do pensions work?"
    conversation = await bridge.conversation_of(key(bridge.slack, root))
    assert conversation.source == "slack"
    assert conversation.data["user_id"] == "U0001"
    assert conversation.data["ticket_id"] == root["ts"]
    assert conversation.data["workspace_id"] == bridge.slack.team_id
    assert conversation.data["channel_id"] == "C0001"
    assert conversation.data["permalink"] == (
        f"https://acme.slack.com/archives/C0001/p{root['ts'].replace('.', '')}"
    )


async def test_follow_up_without_mention_continues_the_same_conversation(
    bridge: SlackBridge,
) -> None:
    root = await mention(bridge, "first question")
    await bridge.wait_replies("C0001", root["ts"])
    first = await bridge.conversation_of(key(bridge.slack, root))
    follow_up = user_message(bridge.slack, text="and a second one", thread_ts=root["ts"])
    assert (await bridge.events.send(envelope(bridge.slack, follow_up))).status == 200
    replies = await bridge.wait_replies("C0001", root["ts"], count=2)
    assert replies[1]["text"] == "You said: and a second one"
    assert (await bridge.conversation_of(key(bridge.slack, root))).id == first.id


async def test_a_second_thread_is_a_second_conversation_and_a_dm_works(
    bridge: SlackBridge,
) -> None:
    one = await mention(bridge, "thread one")
    two = await mention(bridge, "thread two")
    dm = user_message(bridge.slack, channel="D0001", channel_type="im", text="hi in private")
    assert (await bridge.events.send(envelope(bridge.slack, dm))).status == 200
    await bridge.wait_replies("C0001", one["ts"])
    await bridge.wait_replies("C0001", two["ts"])
    [dm_reply] = await bridge.wait_replies("D0001", dm["ts"])
    assert dm_reply["text"] == "You said: hi in private"
    ids = {(await bridge.conversation_of(key(bridge.slack, e))).id for e in (one, two, dm)}
    assert len(ids) == 3


async def test_events_are_acked_fast_while_the_agent_is_slow_and_retries_give_one_reply(
    bridge: SlackBridge, emulator: Any
) -> None:
    hold_answers(emulator)  # the agent works until every delivery has been acked
    message = user_message(bridge.slack, text=f"<@{bridge.slack.bot_user_id}> slow one")
    body = envelope(bridge.slack, message)
    first = await bridge.events.send(body)
    # Slack's retries of a slow delivery arrive while the first is still being answered.
    retries = [await bridge.events.send(body, retry_num=n) for n in (1, 2, 3)]
    twin = await bridge.events.send(envelope(bridge.slack, as_mention(bridge.slack, message)))
    for delivery in (first, *retries, twin):
        assert delivery.status == 200
        assert delivery.seconds < 3.0
    await wait_until(lambda: emulator.faults.answers_held == 1)
    release_answers(emulator)
    await bridge.wait_replies("C0001", message["ts"], timeout=30)
    await settle(bridge)
    assert len(bridge.replies_in("C0001", message["ts"])) == 1


async def settle(bridge: SlackBridge) -> None:
    """A DM round trip: everything delivered before it has been processed once it is answered."""
    probe = user_message(bridge.slack, channel="D0PROBE", channel_type="im", text="probe")
    assert (await bridge.events.send(envelope(bridge.slack, probe))).status == 200
    await bridge.wait_replies("D0PROBE", probe["ts"])


@pytest.mark.parametrize("signature", ["bad", "stale"])
async def test_bad_or_stale_signatures_are_refused_with_401(
    bridge: SlackBridge, signature: str
) -> None:
    event = user_message(bridge.slack, channel="D0001", channel_type="im", text="forged")
    body = envelope(bridge.slack, event)
    if signature == "bad":
        delivery = await bridge.events.send(body, secret="not-the-secret")
    else:
        delivery = await bridge.events.send(body, timestamp=time.time() - 6 * 60)
    assert delivery.status == 401
    await settle(bridge)
    assert bridge.replies_in("D0001", event["ts"]) == []


async def test_url_verification_echoes_the_challenge(bridge: SlackBridge) -> None:
    body = {
        "token": "x",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    delivery = await bridge.events.send(body)
    assert delivery.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in delivery.body


async def test_own_and_bot_messages_edits_deletes_and_joins_get_no_reply_and_no_error(
    bridge: SlackBridge,
) -> None:
    root = await mention(bridge, "question")
    await bridge.wait_replies("C0001", root["ts"])
    slack = bridge.slack
    own = bridge.replies_in("C0001", root["ts"])[0]
    channel = {"channel": "C0001", "channel_type": "channel"}
    quiet: list[dict[str, Any]] = [
        {**own, **channel},
        {"type": "message", "subtype": "bot_message", "bot_id": "B0OTHER", "text": "<@UBOT> hi",
         "ts": slack.next_ts(), "thread_ts": root["ts"], **channel},
        {"type": "message", "subtype": "message_changed", "hidden": True, "ts": slack.next_ts(),
         "message": {"type": "message", "user": "U0001", "text": "edited", "ts": root["ts"]},
         **channel},
        {"type": "message", "subtype": "message_deleted", "hidden": True, "ts": slack.next_ts(),
         "deleted_ts": root["ts"], **channel},
        {"type": "message", "subtype": "channel_join", "user": "U0002", "ts": slack.next_ts(),
         "text": "<@U0002> has joined the channel", **channel},
        {"type": "reaction_added", "user": "U0001", "reaction": "tada", "event_ts": slack.next_ts(),
         "item": {"type": "message", "channel": "C0001", "ts": root["ts"]}},
    ]  # fmt: skip
    for event in quiet:
        assert (await bridge.events.send(envelope(slack, event))).status == 200
    await settle(bridge)
    assert len(bridge.replies_in("C0001", root["ts"])) == 1


@pytest.mark.parametrize("size", [10_000, 26_000])
async def test_a_long_answer_with_code_arrives_complete_in_order_with_fences_intact(
    bridge: SlackBridge, size: int
) -> None:
    chunks, n = [], 0
    while sum(len(c) + 2 for c in chunks) < size:
        chunks.append(f"Paragraph {n}: " + "lorem ipsum " * 30)
        chunks.append(f"```python\ndef step_{n}():\n" + "    x = 1\n" * 20 + "```")
        n += 1
    text = "\n\n".join(chunks)
    dm = user_message(bridge.slack, channel="D0001", channel_type="im", text=text)
    assert (await bridge.events.send(envelope(bridge.slack, dm))).status == 200
    expected = "You said: " + text
    parts_needed = 1 if len(expected) <= 12_000 else 3
    replies = await bridge.wait_replies("D0001", dm["ts"], count=parts_needed)
    posted = [r["text"] for r in replies]
    assert "".join(posted).replace("\n", "") == expected.replace("\n", "")
    for part in posted:
        assert len(re.findall(r"^```", part, re.MULTILINE)) % 2 == 0


async def test_a_429_storm_delays_replies_but_loses_none(bridge: SlackBridge) -> None:
    bridge.slack.rate_limit_per_channel = True
    bridge.slack.fail_next("chat.postMessage", 4, retry_after=1)
    roots = [await mention(bridge, f"storm {i}") for i in range(3)]
    for root in roots:
        [reply] = await bridge.wait_replies("C0001", root["ts"], timeout=40)
        assert reply["text"] == f"You said: storm {roots.index(root)}"
    assert sum(1 for c in bridge.slack.calls if c.status == 429) >= 4


async def test_agent_text_with_broadcast_pings_pings_no_one(bridge: SlackBridge) -> None:
    dm = user_message(
        bridge.slack, channel="D0001", channel_type="im", text="<!channel> <!here> @here @everyone"
    )
    assert (await bridge.events.send(envelope(bridge.slack, dm))).status == 200
    [reply] = await bridge.wait_replies("D0001", dm["ts"])
    wire = reply["text"]
    assert reply["blocks"][0]["text"] == wire
    assert "<!" not in wire
    assert not re.search(r"@(here|channel|everyone)\b", wire)
    assert wire.replace("\u200d", "") == "You said: <!channel> <!here> @here @everyone"


async def test_agent_status_messages_are_shown_while_working_and_cleared(
    bridge: SlackBridge,
) -> None:
    root = await mention(bridge, "what is a pension?", channel=PENSIONS_CHANNEL)
    await bridge.wait_replies(PENSIONS_CHANNEL, root["ts"])

    async def turn_over() -> bool:  # its scheduling entry is acked after the commit
        return await bridge.runtime.bridge.queue_depth() == 0

    await wait_until(turn_over)
    shown = [s[2] for s in bridge.slack.statuses if s[1] == root["ts"]]
    assert len(shown) >= 2  # the accept sign, then the agent's own status lines
    assert all(shown)  # the answer itself cleared the status: no clearing call before it
    assert (PENSIONS_CHANNEL, root["ts"]) not in bridge.slack.shown_status


async def test_slash_command_on_a_thread_is_acked_and_answered_in_that_thread(
    bridge: SlackBridge,
) -> None:
    root = await mention(bridge, "hello")
    await bridge.wait_replies("C0001", root["ts"])
    link = f"https://acme.slack.com/archives/C0001/p{root['ts'].replace('.', '')}"
    delivery = await bridge.events.send_command(slash_command(bridge.slack, f"status {link}"))
    assert delivery.status == 200
    assert delivery.seconds < 3.0
    assert "received" in delivery.body
    replies = await bridge.wait_replies("C0001", root["ts"], count=2)
    conversation = await bridge.conversation_of(key(bridge.slack, root))
    assert conversation.id in replies[1]["text"]


async def test_slash_command_ask_opens_a_thread_with_the_answer(bridge: SlackBridge) -> None:
    delivery = await bridge.events.send_command(slash_command(bridge.slack, "ask what is a SIPP?"))
    assert delivery.status == 200
    await bridge.slack.wait_for(lambda: bool(await_roots(bridge)))
    roots = await_roots(bridge)
    assert roots[0]["text"] == "<@U0001> asked: what is a SIPP?"
    [reply] = await bridge.wait_replies("C0001", roots[0]["ts"])
    assert reply["text"] == "You said: what is a SIPP?"


def await_roots(bridge: SlackBridge) -> list[dict[str, Any]]:
    return [m for m in bridge.slack.posted("C0001") if "thread_ts" not in m]


async def test_usage_is_shown_for_a_slash_command_without_a_thread(bridge: SlackBridge) -> None:
    delivery = await bridge.events.send_command(slash_command(bridge.slack, "reset"))
    assert delivery.status == 200
    assert "Usage" in delivery.body


async def test_no_reply_is_ever_posted_at_channel_root(bridge: SlackBridge) -> None:
    roots = [await mention(bridge, f"q{i}") for i in range(3)]
    await asyncio.gather(*(bridge.wait_replies("C0001", r["ts"]) for r in roots))
    calls = bridge.slack.calls_to("chat.postMessage")
    assert calls
    assert all(c.args.get("thread_ts") for c in calls)


async def test_web_api_calls_share_kept_alive_connections(bridge: SlackBridge) -> None:
    # One aiohttp session for every call (slack_sdk opens a connection per call without one).
    for n in range(3):
        root = await mention(bridge, f"question {n}")
        await bridge.wait_replies("C0001", root["ts"])
    calls = [c for c in bridge.slack.calls if c.method != "auth.test"]
    assert len(calls) >= 6  # per thread: the accept sign and the answer, at least
    assert len(bridge.slack.web_api_peers) <= 3


async def test_a_revoked_bot_token_is_said_once_at_error_and_events_are_still_taken(
    bridge: SlackBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="adapters.slack.app")
    workspace = bridge.slack.workspaces.by_token(bridge.slack.bot_token)
    assert workspace is not None
    bridge.slack.workspaces.revoke(workspace)  # Slack revoked SLACK_BOT_TOKEN
    asked = [await mention(bridge, f"anyone? {i}", channel=f"C0REV{i}") for i in range(2)]

    def refused_posts() -> int:
        channels = {m["channel"] for m in asked}
        calls = bridge.slack.calls
        return sum(c.method == "chat.postMessage" and c.args["channel"] in channels for c in calls)

    await bridge.slack.wait_for(lambda: refused_posts() >= 2, 30)
    said = [r for r in caplog.records if "slack refused SLACK_BOT_TOKEN" in r.getMessage()]
    assert [r.getMessage() for r in said] == [
        "slack refused SLACK_BOT_TOKEN (invalid_auth): nothing can be posted until it is replaced"
    ]
    assert bridge.slack.bot_token not in caplog.text
