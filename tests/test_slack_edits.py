"""Edits and deletes on Slack: real `message_changed` / `message_deleted` deliveries through the
real Bolt app, real Redis, the emulator and the real runtime (see bridge/edits.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.codec import decode_message
from bridge.models import ThreadKey
from bridge.store import keys
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import as_mention, envelope, user_message
from tests.fakes.slack_revisions import message_changed, message_deleted, parent_tombstoned
from tests.fixtures_core import wait_until
from tests.fixtures_emulator import hold_chat, release_chat
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow


@pytest.fixture
async def bridge(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> AsyncIterator[SlackBridge]:
    async with slack_bridge(fake_slack, emulator, redis_client) as running:
        yield running


async def send(b: SlackBridge, event: dict[str, Any]) -> None:
    assert (await b.events.send(envelope(b.slack, event))).status == 200


async def post(b: SlackBridge, text: str, *, mention: bool = False, **kw: Any) -> dict[str, Any]:
    if mention:
        text = f"<@{b.slack.bot_user_id}> {text}"
    message = user_message(b.slack, text=text, **kw)
    await send(b, message)
    if mention:
        await send(b, as_mention(b.slack, message))
    return message


def texts(emulator: Any, role: str = "user") -> list[str]:
    return [
        m.content
        for c in emulator.state.conversations.values()
        for m in c.messages
        if m.role == role
    ]


def said(b: SlackBridge, ts: str) -> list[str]:
    return [m["text"] for m in b.replies_in("C0001", ts)]


async def opened(b: SlackBridge, text: str) -> dict[str, Any]:
    root = await post(b, text, mention=True)
    await b.wait_replies("C0001", root["ts"], 1)
    return root


async def while_a_turn_is_held(
    b: SlackBridge, emulator: Any, redis: Any, root: dict[str, Any]
) -> dict[str, Any]:
    """A reply posted while the turn on an earlier reply is held before the agent (its chat call
    waiting in the emulator): it waits in the inbox, however slow the machine, until
    `release_chat`."""
    hold_chat(emulator)
    thread = ThreadKey("slack", b.slack.team_id, "C0001", root["ts"])
    await post(b, "slow one", thread_ts=root["ts"])
    await wait_until(lambda: emulator.faults.held == 1)
    waiting = await post(b, "secnd question", thread_ts=root["ts"])
    await wait_until(lambda: _queued(redis, thread, 2))
    return waiting


async def _queued(redis: Any, thread: ThreadKey, count: int) -> bool:
    return int(await redis.llen(keys.inbox(thread))) == count


async def test_an_edit_before_the_turn_reaches_the_agent_instead_of_the_first_text(
    bridge: SlackBridge, emulator: Any, redis_client: Any
) -> None:
    root = await opened(bridge, "hello")
    waiting = await while_a_turn_is_held(bridge, emulator, redis_client, root)

    await send(bridge, message_changed(bridge.slack, waiting, "second question"))
    thread = ThreadKey("slack", bridge.slack.team_id, "C0001", root["ts"])
    raw = await redis_client.lrange(keys.inbox(thread), 0, -1)
    assert "second question" in [decode_message(r).text for r in raw]  # replaced while waiting
    release_chat(emulator)
    await bridge.wait_replies("C0001", root["ts"], 3)

    assert texts(emulator) == ["hello", "slow one", "second question"]
    assert said(bridge, root["ts"])[-1] == "You said: second question"


async def test_an_edit_after_the_answer_is_a_follow_up_the_agent_answers(
    bridge: SlackBridge, emulator: Any
) -> None:
    root = await opened(bridge, "is 55 the age?")

    await send(
        bridge, message_changed(bridge.slack, root, f"<@{bridge.slack.bot_user_id}> is 57 the age?")
    )
    await bridge.wait_replies("C0001", root["ts"], 2)

    assert said(bridge, root["ts"]) == [
        "You said: is 55 the age?",
        "You said: edited: is 57 the age?",
    ]


async def test_a_delete_before_the_turn_withdraws_the_message(
    bridge: SlackBridge, emulator: Any, redis_client: Any
) -> None:
    root = await opened(bridge, "hello")
    waiting = await while_a_turn_is_held(bridge, emulator, redis_client, root)

    await send(bridge, message_deleted(bridge.slack, waiting))
    thread = ThreadKey("slack", bridge.slack.team_id, "C0001", root["ts"])
    assert await _queued(redis_client, thread, 1)  # withdrawn while waiting (acked once stored)
    release_chat(emulator)
    await bridge.wait_replies("C0001", root["ts"], 2)
    await wait_until(lambda: _queued(redis_client, thread, 0))

    assert texts(emulator) == ["hello", "slow one"]
    assert said(bridge, root["ts"]) == ["You said: hello", "You said: slow one"]


async def test_a_delete_after_the_answer_is_noted_in_the_history_without_an_answer(
    bridge: SlackBridge, emulator: Any, redis_client: Any
) -> None:
    root = await opened(bridge, "hello")
    second = await post(bridge, "my NI number is QQ123456C", thread_ts=root["ts"])
    await bridge.wait_replies("C0001", root["ts"], 2)

    await send(bridge, message_deleted(bridge.slack, second))
    await wait_until(lambda: any("deleted" in t for t in texts(emulator, "info")))
    thread = ThreadKey("slack", bridge.slack.team_id, "C0001", root["ts"])
    await wait_until(lambda: _queued(redis_client, thread, 0))

    assert len(said(bridge, root["ts"])) == 2
    assert not any("QQ123456C" in t for t in texts(emulator, "info"))


async def test_deleting_the_threads_root_keeps_the_thread_working(
    bridge: SlackBridge, emulator: Any
) -> None:
    root = await opened(bridge, "hello")

    await send(bridge, parent_tombstoned(bridge.slack, root))
    await wait_until(lambda: any("deleted" in t for t in texts(emulator, "info")))
    await post(bridge, "still there?", thread_ts=root["ts"])
    await bridge.wait_replies("C0001", root["ts"], 2)

    assert said(bridge, root["ts"])[-1] == "You said: still there?"
    assert len(emulator.state.conversations) == 1
