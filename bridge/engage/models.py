"""Pydantic models for every schema of the Engage Smarter API contract (section 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "agent", "info", "status"]
Thumbs = Literal["up", "down", ""]


class _Read(BaseModel):
    """Response models ignore unknown fields, as the official SDK does."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Messages


class MessageBasic(_Write):
    role: Role
    content: str
    name: str | None = None


class UserMessage(MessageBasic):
    role: Literal["user"] = "user"


class AgentMessage(MessageBasic):
    role: Literal["agent"] = "agent"


class InfoMessage(MessageBasic):
    """Metadata some agents emit: never shown to end users."""

    role: Literal["info"] = "info"


class StatusMessage(MessageBasic):
    role: Literal["status"] = "status"


class MessageRead(_Read):
    id: str
    org_id: str
    conversation_id: str
    run_id: str
    role: str
    content: str
    name: str | None = None
    user_id: str | None = None
    created: datetime

    @property
    def is_status(self) -> bool:
        return self.role == "status"

    @property
    def is_info(self) -> bool:
        """Info messages are not for end users."""
        return self.role == "info"

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"

    @property
    def for_end_users(self) -> bool:
        return self.role != "info"


# Tags


class TagRead(_Read):
    id: str
    org_id: str
    name: str
    description: str = ""


class TagCreate(_Write):
    name: str
    description: str = ""


class TagUpdate(_Write):
    description: str | None = None


# Conversations


class ConversationRead(_Read):
    id: str
    org_id: str
    data: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    cloned_from_message_id: str | None = None
    summary: str = ""
    created: datetime


class ConversationReadFull(ConversationRead):
    user_id: str
    tags: list[TagRead] = Field(default_factory=list)
    is_saved: bool = False


class ConversationCreate(_Write):
    data: dict[str, Any] = Field(default_factory=dict)
    source: str = ""


class ConversationUpdate(_Write):
    """`None` leaves a field unchanged (the contract's 'likely' reading)."""

    data: dict[str, Any] | None = None
    source: str | None = None


class ChatRequest(_Write):
    messages: list[MessageBasic] = Field(default_factory=list)


class RunChatRequest(_Write):
    messages: list[MessageBasic] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


# Runs


class RunRead(_Read):
    id: str
    org_id: str
    conversation_id: str
    agent: str
    test: bool = False
    created: datetime


# Feedback


class FeedbackUpsert(_Write):
    thumbs: Thumbs | None = None
    comment: str | None = None
    problems: list[str] | None = None
    severity: str | None = None
    effort: str | None = None
    description: str | None = None
    correctness: str | None = None
    completeness: str | None = None
    relevance: str | None = None
    review_text: str | None = None


class FeedbackRead(_Read):
    id: str
    org_id: str
    conversation_id: str
    run_id: str
    user_id: str
    thumbs: str = ""
    comment: str = ""
    problems: list[str] = Field(default_factory=list)
    severity: str = ""
    effort: str = ""
    description: str = ""
    correctness: str | None = None
    completeness: str | None = None
    relevance: str | None = None
    review_text: str | None = None
    created: datetime
    updated: datetime | None = None


# Agents, users


class AgentMetadata(_Read):
    name: str
    title: str = ""
    description: str = ""
    welcome_message: str = ""
    available_all_orgs: bool = False
    available_org_ids: list[str] | None = None


class AgentStatus(_Read):
    status: Literal["active", "fail"]


class Success(_Read):
    success: bool
