"""Discord MESSAGE_UPDATE / MESSAGE_DELETE: which are a person's edits, and which thread a
deleted message (known only by its ids) belonged to. Pure; bridge.edits decides the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.discord.events import ChannelFacts, ChannelKind, thread_key
from bridge.models import ThreadKey

UPDATE, DELETE = "MESSAGE_UPDATE", "MESSAGE_DELETE"


@dataclass(frozen=True, slots=True)
class Revision:
    """Queued in gateway order, behind the MESSAGE_CREATE it revises."""

    event: str
    payload: Mapping[str, Any]
    facts: ChannelFacts | None


def edited_payload(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """A MESSAGE_UPDATE that is a person's edit, shaped as the MESSAGE_CREATE `to_event` reads;
    None for updates nobody typed (embeds unfolding, pins, flags: no `edited_timestamp`)."""
    if not payload.get("edited_timestamp") or "content" not in payload:
        return None
    if not payload.get("author"):
        return None
    return {**payload, "edited_timestamp": None}


def deleted_key(payload: Mapping[str, Any], facts: ChannelFacts) -> ThreadKey | None:
    """The conversation a deleted message would belong to: its thread's, a DM's, or (a top-level
    message in a text channel) the thread started from it, whose id is the message's."""
    guild = payload.get("guild_id")
    channel, message = str(payload["channel_id"]), str(payload["id"])
    if guild is None:
        return thread_key(None, channel, channel)
    if facts.kind is ChannelKind.THREAD and facts.parent_id is not None:
        return thread_key(str(guild), facts.parent_id, channel)
    if facts.kind is ChannelKind.TEXT:
        return thread_key(str(guild), channel, message)
    return None
