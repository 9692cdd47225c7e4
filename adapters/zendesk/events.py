"""Zendesk ticket events (event-subscribed webhooks) and their pure conversion to messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.desk.schema import validate
from adapters.helpdesk import EVENT_PREFIX, is_command_note
from bridge.models import InboundMessage, Origin, ThreadKey

SOURCE = "zendesk"
TICKETS = "tickets"
TYPE_PREFIX = "zen:event-type:ticket."


class _Model(BaseModel):
    # Zendesk sends ids as strings in `detail` and numbers elsewhere; new fields appear over time.
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class Author(_Model):
    id: str = Field(min_length=1, max_length=40)
    is_staff: bool = False
    name: str | None = Field(None, max_length=500)


class Comment(_Model):
    id: str = Field(min_length=1, max_length=40)
    body: str = Field("", max_length=100_000)
    is_public: bool = True
    author: Author


class Ticket(_Model):
    """The event's `detail`: the ticket as it is after the change."""

    id: str = Field(min_length=1, max_length=40)
    requester_id: str | None = None
    assignee_id: str | None = None
    actor_id: str | None = None
    status: str = ""
    subject: str = Field("", max_length=1000)
    description: str = Field("", max_length=100_000)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TicketEvent(_Model):
    id: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=200)
    account_id: str = Field(min_length=1, max_length=40)
    time: datetime
    detail: Ticket
    event: dict[str, Any] = Field(default_factory=dict)


def parse_event(raw: bytes) -> TicketEvent:
    return validate(TicketEvent, raw)


def thread_key(account_id: str, ticket_id: str) -> ThreadKey:
    return ThreadKey(SOURCE, account_id, TICKETS, ticket_id)


def to_event(
    event: TicketEvent, *, bot_user_id: str, forward_internal_notes: bool = False
) -> InboundMessage | None:
    """The message for `event`, or None (own comments, notes, events the bridge does not use)."""
    kind = event.type.removeprefix(TYPE_PREFIX)
    ticket = event.detail
    requester = ticket.requester_id or ""
    if kind == "created":
        text = ticket.description or ticket.subject
        return _message(event, first_id(ticket), requester, text) if text.strip() else None
    if kind == "comment_added":
        return _comment(event, bot_user_id, forward_internal_notes)
    if kind == "agent_assignment_changed":
        assignee = str(event.event.get("current") or "")
        if not assignee or assignee == bot_user_id:
            return None
        return _state(event, assignee, "handoff")
    if kind == "status_changed" and str(event.event.get("current", "")).lower() == "solved":
        actor = ticket.assignee_id or ticket.actor_id or requester
        return _state(event, actor, "resolve")
    return None


def first_id(ticket: Ticket) -> str:
    """The first comment is the ticket's description: `created` and its `comment_added` twin
    (both may arrive) share this id, so the inbox keeps one of them."""
    return f"first:{ticket.id}"


def _comment(
    event: TicketEvent, bot_user_id: str, forward_internal_notes: bool
) -> InboundMessage | None:
    comment = validate(Comment, event.event.get("comment"), at="event.comment")
    author = comment.author
    if author.id == bot_user_id or not comment.body.strip():
        return None
    note_for_the_bridge = author.is_staff and is_command_note(comment.body)
    if not comment.is_public and not (forward_internal_notes or note_for_the_bridge):
        return None
    ticket = event.detail
    is_first = (
        ticket.created_at is not None
        and ticket.created_at == ticket.updated_at
        and comment.body.strip() == ticket.description.strip()
    )
    message_id = first_id(ticket) if is_first else f"comment:{comment.id}"
    origin = Origin.STAFF if author.is_staff or not comment.is_public else Origin.USER
    return _message(event, message_id, author.id, comment.body, origin=origin, name=author.name)


def _state(event: TicketEvent, actor: str, command: str) -> InboundMessage:
    return _message(
        event, f"{EVENT_PREFIX}{event.id}", actor, "", origin=Origin.STAFF, command=command
    )


def _message(
    event: TicketEvent,
    message_id: str,
    user_id: str,
    text: str,
    *,
    origin: Origin = Origin.USER,
    command: str | None = None,
    name: str | None = None,
) -> InboundMessage:
    ticket = event.detail
    return InboundMessage(
        thread=thread_key(event.account_id, ticket.id),
        message_id=message_id,
        user_id=user_id or "unknown",
        user_name=name,
        text=text.strip(),  # sanitised by InboundMessage itself
        sent_at=event.time,
        # A ticket is a private exchange between its requester and the support team.
        is_dm=True,
        origin=origin,
        ticket_id=ticket.id,
        command=command,
    )
