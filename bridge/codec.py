"""JSON encoding of inbound messages for the Redis inbox and dead letters."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from bridge.models import Attachment, InboundMessage, Origin, ThreadKey


def message_to_dict(message: InboundMessage) -> dict[str, Any]:
    return {
        "thread": str(message.thread),
        "message_id": message.message_id,
        "user_id": message.user_id,
        "text": message.text,
        "sent_at": message.sent_at.isoformat(),
        "user_name": message.user_name,
        "attachments": [
            {"name": a.name, "url": a.url, "mime_type": a.mime_type, "size": a.size}
            for a in message.attachments
        ],
        "is_dm": message.is_dm,
        "mentions_bot": message.mentions_bot,
        "origin": message.origin.value,
        "ticket_id": message.ticket_id,
        "permalink": message.permalink,
        "command": message.command,
        "context": [list(pair) for pair in message.context],
        "agent": message.agent,
    }


def message_from_dict(raw: dict[str, Any], thread: ThreadKey | None = None) -> InboundMessage:
    """`thread`: the key the caller expects (an inbox's own), reused instead of parsed again."""
    spelled = raw["thread"]
    if thread is None or spelled != str(thread):
        thread = ThreadKey.parse(spelled)
    return InboundMessage(
        thread=thread,
        message_id=raw["message_id"],
        user_id=raw["user_id"],
        text=raw["text"],
        sent_at=datetime.fromisoformat(raw["sent_at"]),
        user_name=raw.get("user_name"),
        attachments=tuple(Attachment(**a) for a in raw.get("attachments", ())),
        is_dm=bool(raw.get("is_dm")),
        mentions_bot=bool(raw.get("mentions_bot")),
        origin=Origin(raw.get("origin", "user")),
        ticket_id=raw.get("ticket_id"),
        permalink=raw.get("permalink"),
        command=raw.get("command"),
        context=tuple((str(k), str(v)) for k, v in raw.get("context", ())),
        agent=raw.get("agent"),
    )


def encode_message(message: InboundMessage) -> str:
    return json.dumps(message_to_dict(message), separators=(",", ":"))


def decode_message(raw: bytes | str, thread: ThreadKey | None = None) -> InboundMessage:
    return message_from_dict(json.loads(raw), thread)


def with_message_id(message: InboundMessage, message_id: str) -> InboundMessage:
    return replace(message, message_id=message_id)


def text(raw: bytes | str | None) -> str:
    """Redis replies as str whatever the client's decode_responses setting."""
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)
