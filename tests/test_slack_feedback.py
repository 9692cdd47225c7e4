"""Feedback on answers over the real Bolt app: buttons, the comment modal, reactions."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.feedback_blocks import ACTION_COMMENT, ACTION_DOWN, ACTION_UP
from bridge.engage.models import FeedbackRead
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import (
    as_mention,
    block_action,
    envelope,
    reaction,
    user_message,
    view_submission,
)
from tests.fixtures_slack import SlackBridge, slack_bridge

pytestmark = pytest.mark.slow


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    async with slack_bridge(fake_slack, emulator, redis_client) as running:
        yield running


async def answered(b: SlackBridge, text: str) -> tuple[dict[str, Any], str]:
    """Mention the bot; the answer and the run that produced it (from the emulator)."""
    message = user_message(b.slack, text=f"<@{b.slack.bot_user_id}> {text}")
    for event in (message, as_mention(b.slack, message)):
        assert (await b.events.send(envelope(b.slack, event))).status == 200
    [answer] = await b.wait_replies("C0001", message["ts"])
    record = await b.runtime.bridge.threads.get(f"slack:T0001:C0001:{message['ts']}")
    assert record is not None
    [run] = await b.runtime.engage.get_conversation_runs(record.conversation_id)
    return answer, run.id


def feedback(emulator: Any) -> list[FeedbackRead]:
    return list(emulator.state.feedback.values())


async def test_an_answer_carries_feedback_buttons_naming_its_run(bridge: SlackBridge) -> None:
    answer, run_id = await answered(bridge, "buttons?")
    assert answer["text"] == "You said: buttons?"
    [shown, actions] = answer["blocks"]
    assert shown == {"type": "markdown", "text": "You said: buttons?"}
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (ACTION_UP, run_id),
        (ACTION_DOWN, run_id),
        (ACTION_COMMENT, run_id),
    ]


async def test_thumbs_up_then_down_leaves_one_record_thumbs_down_on_the_run(
    bridge: SlackBridge, emulator: Any
) -> None:
    answer, run_id = await answered(bridge, "was I helpful?")
    up = block_action(bridge.slack, answer, ACTION_UP)
    assert (await bridge.events.send_interaction(up)).status == 200
    assert [(f.run_id, f.thumbs) for f in feedback(emulator)] == [(run_id, "up")]
    down = block_action(bridge.slack, answer, ACTION_DOWN)
    assert (await bridge.events.send_interaction(down)).status == 200
    [record] = feedback(emulator)
    assert (record.run_id, record.thumbs, record.description) == (run_id, "down", "by slack:U0001")
    acks = [(e["user"], e["text"], e.get("thread_ts")) for e in bridge.slack.channels.ephemerals]
    assert acks == [
        ("U0001", "Thanks for the :+1:", answer["thread_ts"]),
        ("U0001", "Thanks, noted :-1:", answer["thread_ts"]),
    ]


async def test_a_redelivered_button_action_writes_nothing_twice(
    bridge: SlackBridge, emulator: Any
) -> None:
    answer, _ = await answered(bridge, "again?")
    down = block_action(bridge.slack, answer, ACTION_DOWN)
    assert (await bridge.events.send_interaction(down)).status == 200
    [first] = feedback(emulator)
    up = block_action(bridge.slack, answer, ACTION_UP)
    up_again = {**up, "trigger_id": "9.redelivered"}
    assert (await bridge.events.send_interaction(up)).status == 200
    [written] = feedback(emulator)
    assert (await bridge.events.send_interaction(up_again)).status == 200
    [after] = feedback(emulator)
    assert first.thumbs == "down"
    assert written.thumbs == after.thumbs == "up"
    assert after.updated == written.updated  # the redelivery did not reach the Runs API


async def test_a_comment_from_the_modal_is_added_to_the_runs_feedback(
    bridge: SlackBridge, emulator: Any
) -> None:
    answer, run_id = await answered(bridge, "comment on me")
    await bridge.events.send_interaction(block_action(bridge.slack, answer, ACTION_DOWN))
    click = block_action(bridge.slack, answer, ACTION_COMMENT)
    assert (await bridge.events.send_interaction(click)).status == 200
    [view] = bridge.slack.views
    submitted = view_submission(bridge.slack, view, {"comment": {"text": "the year is wrong"}})
    delivery = await bridge.events.send_interaction(submitted)
    assert delivery.status == 200
    assert "errors" not in delivery.body
    [record] = feedback(emulator)
    assert (record.run_id, record.thumbs, record.comment) == (run_id, "down", "the year is wrong")


async def test_reactions_on_an_answer_count_and_removing_one_withdraws_it(
    bridge: SlackBridge, emulator: Any
) -> None:
    answer, run_id = await answered(bridge, "react to me")
    add = envelope(bridge.slack, reaction(bridge.slack, "C0001", answer["ts"], "-1::skin-tone-3"))
    assert (await bridge.events.send(add)).status == 200
    assert [(f.run_id, f.thumbs) for f in feedback(emulator)] == [(run_id, "down")]
    assert (await bridge.events.send(add, retry_num=1)).status == 200
    removed = reaction(bridge.slack, "C0001", answer["ts"], "-1", added=False)
    assert (await bridge.events.send(envelope(bridge.slack, removed))).status == 200
    assert [f.thumbs for f in feedback(emulator)] == [""]
    assert len(bridge.slack.channels.ephemerals) == 1


async def test_reactions_on_other_messages_write_nothing(
    bridge: SlackBridge, emulator: Any
) -> None:
    message = user_message(bridge.slack, text="just a user post")
    event = reaction(bridge.slack, "C0001", message["ts"], "+1")
    assert (await bridge.events.send(envelope(bridge.slack, event))).status == 200
    assert feedback(emulator) == []


async def test_where_slack_refuses_markdown_the_answer_arrives_once_and_reactions_count(
    bridge: SlackBridge, emulator: Any
) -> None:
    bridge.slack.refuse_markdown()
    answer, run_id = await answered(bridge, "**plain** please")
    assert answer["text"] == "You said: *plain* please"
    assert "blocks" not in answer
    assert "markdown_text" not in answer
    add = envelope(bridge.slack, reaction(bridge.slack, "C0001", answer["ts"], "+1"))
    assert (await bridge.events.send(add)).status == 200
    assert [(f.run_id, f.thumbs) for f in feedback(emulator)] == [(run_id, "up")]
