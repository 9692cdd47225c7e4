"""to_event and slash-command parsing on recorded Slack payloads (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.events import (
    BotIdentity,
    command_to_event,
    parse_slash_command,
    permalink,
    to_event,
)
from bridge.models import Attachment, Origin, ThreadKey

PAYLOADS = Path(__file__).parent / "payloads" / "slack"
BOT = BotIdentity(
    team_id="T0001", user_id="UBOT", bot_id="BBOT", workspace_url="https://acme.slack.com/"
)


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return loaded


def test_app_mention_becomes_a_message_in_a_new_thread_rooted_at_the_post() -> None:
    message = to_event(payload("app_mention"), BOT)
    assert message is not None
    assert message.thread == ThreadKey("slack", "T0001", "C0001", "1712345678.000100")
    assert message.message_id == "C0001:1712345678.000100"
    assert message.mentions_bot
    assert not message.is_dm
    assert message.user_id == "U0001"
    assert message.ticket_id == "1712345678.000100"
    assert message.permalink == "https://acme.slack.com/archives/C0001/p1712345678000100"
    assert message.origin is Origin.USER


def test_mention_text_loses_the_bot_mention_and_slack_escapes() -> None:
    message = to_event(payload("app_mention"), BOT)
    assert message is not None
    assert message.text == (
        "how do I transfer my pension? See the FAQ (https://example.org/faq) & #help"
    )


def test_app_mention_and_message_twins_share_thread_and_message_id() -> None:
    mention = to_event(payload("app_mention"), BOT)
    twin = to_event(payload("message_channel"), BOT)
    assert mention is not None
    assert twin is not None
    assert (mention.thread, mention.message_id) == (twin.thread, twin.message_id)
    assert twin.mentions_bot


def test_plain_channel_message_is_passed_on_without_mention_for_the_policy_to_judge() -> None:
    message = to_event(payload("message_plain"), BOT)
    assert message is not None
    assert not message.mentions_bot
    assert not message.is_dm


def test_thread_reply_belongs_to_the_root_thread_and_carries_the_display_name() -> None:
    message = to_event(payload("thread_reply"), BOT)
    assert message is not None
    assert message.thread.thread == "1712345678.000100"
    assert message.message_id == "C0001:1712345700.000200"
    assert message.ticket_id == "1712345678.000100"
    assert message.user_name == "alice"
    assert message.permalink == "https://acme.slack.com/archives/C0001/p1712345678000100"


def test_direct_message_is_marked_as_dm() -> None:
    message = to_event(payload("dm"), BOT)
    assert message is not None
    assert message.is_dm
    assert message.thread == ThreadKey("slack", "T0001", "D0001", "1712345800.000400")


@pytest.mark.parametrize(
    "name", ["message_changed", "message_deleted", "own_message", "channel_join"]
)
def test_housekeeping_and_own_messages_are_ignored(name: str) -> None:
    assert to_event(payload(name), BOT) is None


def test_other_bots_are_handed_over_marked_as_bots() -> None:
    message = to_event(payload("bot_message"), BOT)
    assert message is not None
    assert message.origin is Origin.BOT
    assert message.user_id == "B0OTHER"


def test_file_share_keeps_file_references() -> None:
    message = to_event(payload("file_share"), BOT)
    assert message is not None
    assert message.attachments == (
        Attachment(
            name="statement.pdf",
            url="https://files.slack.com/files-pri/T0001-F0001/statement.pdf",
            mime_type="application/pdf",
            size=52344,
        ),
    )


def test_configured_staff_are_marked_as_staff() -> None:
    message = to_event(payload("staff_reply"), BOT, frozenset({"U0STAFF"}))
    assert message is not None
    assert message.origin is Origin.STAFF
    assert to_event(payload("staff_reply"), BOT) is not None


def test_non_message_events_are_ignored() -> None:
    assert to_event(payload("assistant_thread_started"), BOT) is None


def test_the_team_id_is_part_of_every_thread_key() -> None:
    body = payload("app_mention")
    body["team_id"] = "T0OTHER"
    message = to_event(body, BOT)
    assert message is not None
    assert str(message.thread) == "slack:T0OTHER:C0001:1712345678.000100"


def test_permalink_drops_the_dot_of_the_ts() -> None:
    assert (
        permalink("https://x.slack.com", "C1", "1.000002")
        == "https://x.slack.com/archives/C1/p1000002"
    )


def test_slash_command_with_a_thread_link_targets_that_thread() -> None:
    form = payload("slash_command")
    command = parse_slash_command(form)
    assert command is not None
    assert (command.name, command.argument) == ("agent", "parrot")
    assert command.thread == ThreadKey("slack", "T0001", "C0001", "1712345678.000100")
    message = command_to_event(form, command, command.thread, BOT)
    assert message.command == "agent parrot"
    assert message.message_id == "command:1712345.123.abcdef"


def test_slash_command_link_to_a_reply_targets_the_replys_thread() -> None:
    link = "https://acme.slack.com/archives/C9/p1712345700000200?thread_ts=1712345678.000100&cid=C9"
    command = parse_slash_command({"team_id": "T1", "channel_id": "C1", "text": f"status <{link}>"})
    assert command is not None
    assert command.thread == ThreadKey("slack", "T1", "C9", "1712345678.000100")


@pytest.mark.parametrize(
    "text", ["", "reset", "agent https://a.slack.com/archives/C1/p1712345678000100", "dance C1"]
)
def test_slash_commands_without_a_thread_or_with_wrong_arguments_are_refused(text: str) -> None:
    assert parse_slash_command({"team_id": "T1", "channel_id": "C1", "text": text}) is None


def test_ask_slash_command_is_a_new_question_addressed_to_the_bot() -> None:
    form = {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "text": "ask what is a SIPP?"}
    command = parse_slash_command(form)
    assert command is not None
    assert command.name == "ask"
    thread = ThreadKey("slack", "T1", "C1", "1712345999.000001")
    message = command_to_event(form, command, thread, BOT)
    assert message.text == "what is a SIPP?"
    assert message.command is None
    assert message.mentions_bot
    assert message.message_id == "C1:1712345999.000001"
