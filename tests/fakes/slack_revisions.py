"""Edits and deletes as Slack delivers them: `message_changed` (the whole edited message under
`message`, with `edited`), `message_deleted` (`deleted_ts`, no `user`), and the tombstone a
deleted thread parent with replies becomes."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack import FakeSlack

_WRAPPER = ("channel", "event_ts", "channel_type")


def _stored(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in _WRAPPER}


def message_changed(slack: FakeSlack, original: dict[str, Any], text: str) -> dict[str, Any]:
    ts = slack.next_ts()
    edited = {**_stored(original), "type": "message", "text": text,
              "edited": {"user": original["user"], "ts": ts}}  # fmt: skip
    return _wrapper(original, ts, subtype="message_changed", message=edited)


def message_deleted(slack: FakeSlack, original: dict[str, Any]) -> dict[str, Any]:
    ts = slack.next_ts()
    return _wrapper(original, ts, subtype="message_deleted", deleted_ts=original["ts"])


def parent_tombstoned(slack: FakeSlack, original: dict[str, Any]) -> dict[str, Any]:
    """A deleted thread parent that has replies: Slack keeps the thread under a tombstone."""
    ts = slack.next_ts()
    tombstone = {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                 "user": "USLACKBOT", "hidden": True, "ts": original["ts"],
                 "thread_ts": original["ts"], "reply_count": 1}  # fmt: skip
    return _wrapper(original, ts, subtype="message_changed", message=tombstone)


def _wrapper(original: dict[str, Any], ts: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message", "hidden": True, "channel": original["channel"], "ts": ts,
        "event_ts": ts, "previous_message": _stored(original), **fields,
    }  # fmt: skip
    if "channel_type" in original:
        event["channel_type"] = original["channel_type"]
    return event
