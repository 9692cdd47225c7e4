"""adapters.slack.revisions on Slack's edit and delete payloads: pure, no network."""

from __future__ import annotations

from typing import Any

from adapters.slack.events import BotIdentity
from adapters.slack.revisions import deleted, edited
from bridge.models import ThreadKey

BOT = BotIdentity("T1", "UBOT", "BBOT", "https://acme.slack.com/")
REPLY = {"type": "message", "user": "U1", "text": "helo", "ts": "1700000001.000200",
         "thread_ts": "1700000000.000100", "team": "T1"}  # fmt: skip


def body(event: dict[str, Any]) -> dict[str, Any]:
    return {"team_id": "T1", "event": {"channel": "C1", "channel_type": "channel", **event}}


def changed(message: dict[str, Any]) -> dict[str, Any]:
    event = {"type": "message", "subtype": "message_changed", "hidden": True,
             "ts": "1700000002.000300", "message": message, "previous_message": REPLY}  # fmt: skip
    return body(event)


def test_a_persons_edit_is_the_edited_message_in_its_thread_with_the_edit_ts() -> None:
    edit = {**REPLY, "text": "hello", "edited": {"user": "U1", "ts": "1700000002.000300"}}

    found = edited(changed(edit), BOT)

    assert found is not None
    message, edit_id = found
    assert (message.text, message.message_id, edit_id) == (
        "hello",
        "C1:1700000001.000200",
        "1700000002.000300",
    )
    assert message.thread == ThreadKey("slack", "T1", "C1", "1700000000.000100")


def test_changes_nobody_typed_and_the_bots_own_edits_are_not_edits() -> None:
    unfurled = {**REPLY, "attachments": [{"title": "a link preview"}]}  # no `edited`
    own = {**REPLY, "user": "UBOT", "edited": {"user": "UBOT", "ts": "1700000002.000300"}}

    assert edited(changed(unfurled), BOT) is None
    assert edited(changed(own), BOT) is None


def test_a_delete_and_a_parents_tombstone_name_the_message_and_its_thread() -> None:
    gone = deleted(body({"type": "message", "subtype": "message_deleted", "hidden": True,
                         "deleted_ts": REPLY["ts"], "previous_message": REPLY}), BOT)  # fmt: skip
    root = {**REPLY, "ts": "1700000000.000100"}
    tombstone = {"subtype": "tombstone", "ts": root["ts"], "thread_ts": root["ts"]}
    parent = deleted(body({"type": "message", "subtype": "message_changed", "ts": "9.9",
                           "message": tombstone, "previous_message": root}), BOT)  # fmt: skip

    assert gone is not None
    assert parent is not None
    assert (gone.message_id, gone.user_id) == ("C1:1700000001.000200", "U1")
    assert gone.thread == ThreadKey("slack", "T1", "C1", "1700000000.000100")
    assert parent.message_id == "C1:1700000000.000100"
    assert parent.thread == gone.thread
