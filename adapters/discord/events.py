"""Pure normalization of Discord MESSAGE_CREATE payloads into platform-neutral messages."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.models import Attachment, InboundMessage, Origin, ThreadKey

PLATFORM = "discord"
DM_WORKSPACE = "@dm"
JUMP_URL = "https://discord.com/channels/{guild}/{channel}/{message}"

# Message types people write: DEFAULT (0) and REPLY (19). Everything else (thread created,
# pins, joins, boosts, thread starter stubs, command responses) is a system message.
_USER_MESSAGE_TYPES = frozenset({0, 19})


class ChannelKind(enum.StrEnum):
    TEXT = "text"
    THREAD = "thread"
    DM = "dm"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What the gateway cache knows about the channel a message was posted in.

    MESSAGE_CREATE does not say whether its channel is a thread nor what the thread's parent is,
    so the listener looks that up and passes it in.
    """

    kind: ChannelKind
    parent_id: str | None = None
    # The bot's integration-managed role in this guild: Discord's mention autocomplete often
    # inserts `<@&role>` instead of `<@bot>`, and people mean the bot either way.
    bot_role_id: str | None = None


@dataclass(frozen=True, slots=True)
class BotFacts:
    """Who the bot is and what the configuration says, as far as normalization cares."""

    user_id: str
    staff_role_ids: frozenset[str] = frozenset()
    auto_reply_channels: frozenset[str] = frozenset()
    allow_bots: bool = False


def thread_key(guild_id: str | None, channel_id: str, thread_id: str) -> ThreadKey:
    """The one place Discord thread keys are built; DMs are one conversation per DM channel."""
    if guild_id is None:
        return ThreadKey(PLATFORM, DM_WORKSPACE, channel_id, channel_id)
    return ThreadKey(PLATFORM, guild_id, channel_id, thread_id)


def to_event(
    payload: Mapping[str, Any], channel: ChannelFacts, bot: BotFacts
) -> InboundMessage | None:
    """A MESSAGE_CREATE payload as an `InboundMessage`, or `None` when it must be ignored."""
    author: Mapping[str, Any] = payload.get("author") or {}
    author_id = str(author.get("id", ""))
    if not author_id or author_id == bot.user_id:
        return None
    if payload.get("type", 0) not in _USER_MESSAGE_TYPES or payload.get("edited_timestamp"):
        return None
    is_bot = bool(author.get("bot")) or payload.get("webhook_id") is not None
    if is_bot and not bot.allow_bots:
        return None

    message_id = str(payload["id"])
    channel_id = str(payload["channel_id"])
    guild_id = _optional_str(payload.get("guild_id"))
    mentions_bot = any(str(m.get("id")) == bot.user_id for m in payload.get("mentions") or ())
    if channel.bot_role_id is not None:
        roles = {str(r) for r in payload.get("mention_roles") or ()}
        mentions_bot = mentions_bot or channel.bot_role_id in roles

    if guild_id is None:
        key = thread_key(None, channel_id, channel_id)
    elif channel.kind is ChannelKind.THREAD and channel.parent_id is not None:
        key = thread_key(guild_id, channel.parent_id, channel_id)
    elif channel.kind is ChannelKind.TEXT:
        # A top-level message only matters if it opens a conversation: the thread that will be
        # started from it has the message's id, so the key is known before the thread exists.
        if not mentions_bot and channel_id not in bot.auto_reply_channels:
            return None
        key = thread_key(guild_id, channel_id, message_id)
    else:
        return None

    return InboundMessage(
        thread=key,
        message_id=message_id,
        user_id=author_id,
        text=strip_bot_mention(str(payload.get("content") or ""), bot.user_id, channel.bot_role_id),
        sent_at=_parse_timestamp(payload.get("timestamp")),
        user_name=_display_name(payload),
        attachments=tuple(_attachment(a) for a in payload.get("attachments") or ()),
        is_dm=guild_id is None,
        mentions_bot=mentions_bot,
        origin=_origin(payload, is_bot, bot.staff_role_ids),
        ticket_id=key.thread,
        permalink=JUMP_URL.format(guild=guild_id or "@me", channel=channel_id, message=message_id),
    )


def strip_bot_mention(text: str, bot_user_id: str, bot_role_id: str | None = None) -> str:
    text = re.sub(rf"<@!?{re.escape(bot_user_id)}>", "", text)
    if bot_role_id is not None:
        text = text.replace(f"<@&{bot_role_id}>", "")
    return text.strip()


def _origin(payload: Mapping[str, Any], is_bot: bool, staff_role_ids: frozenset[str]) -> Origin:
    if is_bot:
        return Origin.BOT
    roles = {str(r) for r in (payload.get("member") or {}).get("roles") or ()}
    return Origin.STAFF if roles & staff_role_ids else Origin.USER


def _display_name(payload: Mapping[str, Any]) -> str | None:
    member = payload.get("member") or {}
    author = payload.get("author") or {}
    name = member.get("nick") or author.get("global_name") or author.get("username")
    return str(name) if name else None


def _attachment(raw: Mapping[str, Any]) -> Attachment:
    return Attachment(
        name=str(raw.get("filename", "")),
        url=str(raw.get("url", "")),
        mime_type=raw.get("content_type"),
        size=raw.get("size"),
    )


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return datetime.now(UTC)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
