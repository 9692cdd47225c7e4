"""Slack: non-staff cannot take a staff-held thread back, in the thread or by link; refusals are
ephemeral and change nothing; by link, nobody acts across a private channel they are not in."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import FileConfig, Routing, Staff
from bridge.models import ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import as_mention, envelope, slash_command, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow
STAFF, STARTER, OTHER = "USTAFF", "U0001", "U0002"
PRIVATE = "GPRIVATE"


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    config = FileConfig(
        routing=Routing(default_agent="parrot"), staff=Staff(slack_user_ids=[STAFF])
    )
    async with slack_bridge(fake_slack, emulator, redis_client, file=config) as running:
        yield running


async def say(b: SlackBridge, user: str, text: str, channel: str, thread_ts: str | None) -> Any:
    message = user_message(
        b.slack,
        channel=channel,
        user=user,
        text=f"<@{b.slack.bot_user_id}> {text}",
        thread_ts=thread_ts,
    )
    for event in (message, as_mention(b.slack, message)):
        assert (await b.events.send(envelope(b.slack, event))).status == 200
    return message


def essentials(record: Any) -> tuple[str, str, str, str]:
    return record.conversation_id, record.status, record.agent, record.assignee


async def status_of(b: SlackBridge, thread: ThreadKey) -> str | None:
    record = await b.runtime.bridge.threads.get(thread)
    return record.status if record else None


async def staff_held_thread(b: SlackBridge, channel: str = "C0001") -> ThreadKey:
    """A thread the starter opened, answered by the bot, then taken over by staff."""
    root = await say(b, STARTER, "hello", channel, None)
    await b.wait_replies(channel, root["ts"])
    thread = ThreadKey("slack", b.slack.team_id, channel, root["ts"])
    taken = user_message(
        b.slack, channel=channel, user=STAFF, text="I'll take it", thread_ts=root["ts"]
    )
    assert (await b.events.send(envelope(b.slack, taken))).status == 200

    async def held() -> bool:
        return await status_of(b, thread) == "human"

    await wait_until(held)
    return thread


def link(thread: ThreadKey) -> str:
    return f"https://acme.slack.com/archives/{thread.channel}/p{thread.thread.replace('.', '')}"


async def test_in_the_thread_non_staff_cannot_resume_resolve_reset_or_reroute_it(
    bridge: SlackBridge,
) -> None:
    thread = await staff_held_thread(bridge)
    record = await bridge.runtime.bridge.threads.get(thread)
    posts_before = len(bridge.replies_in(thread.channel, thread.thread))
    attempts = [(STARTER, "resume"), (STARTER, "reset"), (OTHER, "resolve"), (OTHER, "agent echo")]
    for user, command in attempts:
        await say(bridge, user, command, thread.channel, thread.thread)
    await bridge.slack.wait_for(
        lambda: (
            len(bridge.slack.channels.told(STARTER)) == 2
            and len(bridge.slack.channels.told(OTHER)) == 2
        ),
        timeout=20,
    )
    assert all("Only staff" in t for t in bridge.slack.channels.told(STARTER))
    assert all("Only staff" in t for t in bridge.slack.channels.told(OTHER))
    assert all(e["thread_ts"] == thread.thread for e in bridge.slack.channels.ephemerals)
    after = await bridge.runtime.bridge.threads.get(thread)
    assert essentials(after) == essentials(record)  # nothing changed
    assert len(bridge.replies_in(thread.channel, thread.thread)) == posts_before


async def test_by_link_non_staff_is_refused_at_once_and_nothing_is_queued(
    bridge: SlackBridge,
) -> None:
    thread = await staff_held_thread(bridge)
    record = await bridge.runtime.bridge.threads.get(thread)
    for command in ("resume", "agent echo", "resolve", "reset"):
        form = slash_command(
            bridge.slack, f"{command} {link(thread)}", channel="C0OTHER", user=OTHER
        )
        delivery = await bridge.events.send_command(form)
        assert delivery.status == 200
        assert "Only staff" in delivery.body, delivery.body
    assert essentials(await bridge.runtime.bridge.threads.get(thread)) == essentials(record)
    assert not await bridge.runtime.redis.exists(f"{{{thread}}}:inbox")


async def test_by_link_staff_outside_a_private_channel_is_refused_and_inside_it_may_act(
    bridge: SlackBridge,
) -> None:
    bridge.slack.channels.private(PRIVATE, {STARTER, "UANOTHER"})
    thread = await staff_held_thread(bridge, PRIVATE)
    form = slash_command(bridge.slack, f"resume {link(thread)}", channel="C0OTHER", user=STAFF)
    refused = await bridge.events.send_command(form)
    assert "member" in refused.body, refused.body
    assert await status_of(bridge, thread) == "human"

    bridge.slack.channels.page_size_cap = 1  # the member check follows Slack's pagination
    bridge.slack.channels.private(PRIVATE, {STARTER, "UANOTHER", STAFF})
    form = slash_command(bridge.slack, f"resume {link(thread)}", channel="C0OTHER", user=STAFF)
    accepted = await bridge.events.send_command(form)
    assert "received" in accepted.body, accepted.body

    async def resumed() -> bool:
        return await status_of(bridge, thread) == "bot"

    await wait_until(resumed)


async def test_the_starter_may_ask_for_a_person_and_then_not_take_the_thread_back(
    bridge: SlackBridge,
) -> None:
    root = await say(bridge, STARTER, "hello", "C0001", None)
    await bridge.wait_replies("C0001", root["ts"])
    thread = ThreadKey("slack", bridge.slack.team_id, "C0001", root["ts"])
    await say(bridge, STARTER, "handoff", "C0001", root["ts"])

    async def held() -> bool:
        return await status_of(bridge, thread) == "human"

    await wait_until(held)
    form = slash_command(bridge.slack, f"resume {link(thread)}", user=STARTER)
    assert "Only staff" in (await bridge.events.send_command(form)).body
    assert await status_of(bridge, thread) == "human"
