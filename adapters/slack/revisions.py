"""Slack `message_changed` / `message_deleted`: a person's edit as the edited message, a delete
(or a thread parent's tombstone) as the deleted message's thread and id. Pure; bridge.edits
decides what they mean for the conversation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.slack.events import PLATFORM, BotIdentity, message_id, to_event
from bridge.models import InboundMessage, ThreadKey

SUBTYPES = frozenset({"message_changed", "message_deleted"})


@dataclass(frozen=True, slots=True)
class Deleted:
    thread: ThreadKey
    message_id: str
    user_id: str
    is_dm: bool


def edited(
    body: Mapping[str, Any], bot: BotIdentity, staff: frozenset[str] = frozenset()
) -> tuple[InboundMessage, str] | None:
    """(the edited message, an id unique per edit) for a person's edit; None for the rest
    (link unfurls and bot updates change messages without `edited`, tombstones are deletes)."""
    event = body.get("event") or {}
    message = event.get("message")
    if event.get("subtype") != "message_changed" or not isinstance(message, Mapping):
        return None
    edit = message.get("edited")
    if not isinstance(edit, Mapping) or message.get("subtype") == "tombstone":
        return None
    inner = {**message, "type": "message", "channel": event.get("channel"),
             "channel_type": event.get("channel_type")}  # fmt: skip
    converted = to_event({**body, "event": inner}, bot, staff)
    if converted is None:
        return None
    return converted, str(edit.get("ts") or event.get("ts"))


def deleted(body: Mapping[str, Any], bot: BotIdentity) -> Deleted | None:
    """The deleted message: `message_deleted`, or the tombstone a deleted thread parent with
    replies leaves behind (Slack keeps the thread: it arrives as `message_changed`)."""
    event = body.get("event") or {}
    message = event.get("message") or {}
    previous = event.get("previous_message") or {}
    if event.get("subtype") == "message_deleted":
        ts = event.get("deleted_ts")
    elif event.get("subtype") == "message_changed" and message.get("subtype") == "tombstone":
        ts = message.get("ts")
    else:
        return None
    channel = event.get("channel")
    if not (ts and channel) or previous.get("bot_id") or previous.get("user") == bot.user_id:
        return None
    team = str(body.get("team_id") or bot.team_id)
    thread_ts = str(previous.get("thread_ts") or ts)
    return Deleted(
        thread=ThreadKey(PLATFORM, team, str(channel), thread_ts),
        message_id=message_id(str(channel), str(ts)),
        user_id=str(previous.get("user") or ""),
        is_dm=event.get("channel_type") == "im",
    )
