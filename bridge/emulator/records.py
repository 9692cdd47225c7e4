"""The emulator's stored records and how they turn into the contract's read models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bridge.emulator.ids import new_id
from bridge.engage.models import (
    ConversationRead,
    ConversationReadFull,
    MessageBasic,
    MessageRead,
    RunRead,
    TagRead,
)

SUMMARY_LENGTH = 60


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ApiUser:
    """The owner of one API key: a user in one organisation."""

    user_id: str
    org_id: str


@dataclass(slots=True)
class ConversationRecord:
    id: str
    org_id: str
    user_id: str
    data: dict[str, Any]
    source: str
    created: datetime
    cloned_from_message_id: str | None = None
    messages: list[MessageRead] = field(default_factory=list)
    tag_ids: list[str] = field(default_factory=list)
    saved_by: set[str] = field(default_factory=set)

    @property
    def summary(self) -> str:
        """The platform writes a short summary; ours is the first user message, shortened."""
        first = next((m.content for m in self.messages if m.role == "user"), "")
        text = " ".join(first.split())
        if len(text) <= SUMMARY_LENGTH:
            return text
        return text[: SUMMARY_LENGTH - 1].rstrip() + "…"

    def to_read(self) -> ConversationRead:
        return ConversationRead(
            id=self.id,
            org_id=self.org_id,
            data=dict(self.data),
            source=self.source,
            cloned_from_message_id=self.cloned_from_message_id,
            summary=self.summary,
            created=self.created,
        )

    def to_full(self, tags: list[TagRead], caller_user_id: str) -> ConversationReadFull:
        return ConversationReadFull(
            **self.to_read().model_dump(),
            user_id=self.user_id,
            tags=tags,
            is_saved=caller_user_id in self.saved_by,
        )


@dataclass(slots=True)
class RunRecord:
    read: RunRead
    user_id: str
    tag_ids: list[str] = field(default_factory=list)


def message_read(
    message: MessageBasic,
    *,
    org_id: str,
    conversation_id: str,
    run_id: str,
    user_id: str,
    name: str | None = None,
) -> MessageRead:
    """A full MessageRead; agent-side messages carry the agent's name, all carry the user id."""
    return MessageRead(
        id=new_id(),
        org_id=org_id,
        conversation_id=conversation_id,
        run_id=run_id,
        role=message.role,
        content=message.content,
        name=name if name is not None else message.name,
        user_id=user_id,
        created=now(),
    )
