"""The desk webhook's JSON schema and its pure conversion to an `InboundMessage`."""

from __future__ import annotations

import enum
from collections.abc import Collection
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.models import InboundMessage, Origin, ThreadKey

SOURCE = "desk"
TICKETS_CHANNEL = "tickets"


class EventType(enum.StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_COMMENT = "ticket.comment"
    AGENT_COMMENT = "ticket.agent_comment"
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_SOLVED = "ticket.solved"
    TICKET_REOPENED = "ticket.reopened"


class _Model(BaseModel):
    # Helpdesks add fields over time: tolerate them rather than reject a whole delivery.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


_Id = Field(min_length=1, max_length=200)


class Person(_Model):
    id: str = _Id
    name: str | None = Field(None, max_length=200)


class Author(Person):
    role: Literal["customer", "agent", "system"] = "customer"


class Ticket(_Model):
    id: str = _Id
    subject: str = Field("", max_length=1000)
    requester: Person


class Comment(_Model):
    id: str = _Id
    author: Author
    body: str = Field(min_length=1, max_length=100_000)


class DeskEvent(_Model):
    """One webhook delivery. `id` is unique per event and is the dedupe key."""

    id: str = _Id
    type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime
    account_id: str = _Id
    ticket: Ticket
    comment: Comment | None = None
    assignee: Person | None = None


class InvalidEvent(ValueError):
    """The body is not a valid desk event; `field` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: bytes | object, *, at: str = "") -> M:
    """`data` (a raw JSON body, or a part of one found at `at`) as `model`; `InvalidEvent`
    names the first bad field. Shared by the desk, Zendesk and Chatwoot webhooks."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in (at, *first["loc"]) if part) or "body"
        raise InvalidEvent(location, first["msg"]) from exc


def parse_event(raw: bytes) -> DeskEvent:
    """Validate a raw body; raise `InvalidEvent` naming the first bad field."""
    return validate(DeskEvent, raw)


def thread_key(account_id: str, ticket_id: str) -> ThreadKey:
    return ThreadKey(SOURCE, account_id, TICKETS_CHANNEL, ticket_id)


def to_event(event: DeskEvent, *, staff_ids: Collection[str] = ()) -> InboundMessage | None:
    """The message the core should see for `event`, or `None` for an unknown event type.

    Raises `InvalidEvent` when the type needs a field the event lacks (a comment, an assignee).
    """
    try:
        kind = EventType(event.type)
    except ValueError:
        return None
    requester = event.ticket.requester
    if kind in (EventType.TICKET_COMMENT, EventType.AGENT_COMMENT):
        comment = _required_comment(event)
        is_staff = (
            kind is EventType.AGENT_COMMENT
            or comment.author.role == "agent"
            or comment.author.id in staff_ids
        )
        origin = Origin.STAFF if is_staff else Origin.USER
        return _message(event, comment.author, comment.body, origin=origin)
    if kind is EventType.TICKET_CREATED or (
        kind is EventType.TICKET_REOPENED and event.comment is not None
    ):
        text = event.comment.body if event.comment else event.ticket.subject
        if not text:
            raise InvalidEvent("ticket.subject", "a ticket without a comment needs a subject")
        return _message(event, requester, text)
    if kind is EventType.TICKET_ASSIGNED:
        if event.assignee is None:
            raise InvalidEvent("assignee", f"Field required for {event.type}")
        return _message(event, event.assignee, "", origin=Origin.STAFF, command="handoff")
    if kind is EventType.TICKET_SOLVED:
        actor = event.assignee or requester
        return _message(event, actor, "", origin=Origin.STAFF, command="resolve")
    # Reopened without a comment: the ticket goes back to the bot until someone writes.
    actor = event.assignee or requester
    return _message(event, actor, "", origin=Origin.STAFF, command="resume")


def _required_comment(event: DeskEvent) -> Comment:
    if event.comment is None:
        raise InvalidEvent("comment", f"Field required for {event.type}")
    return event.comment


def _message(
    event: DeskEvent,
    author: Person,
    text: str,
    *,
    origin: Origin = Origin.USER,
    command: str | None = None,
) -> InboundMessage:
    return InboundMessage(
        thread=thread_key(event.account_id, event.ticket.id),
        message_id=event.id,
        user_id=author.id,
        user_name=author.name,
        text=text,
        sent_at=event.occurred_at,
        # A ticket is a private exchange between its requester and the support team, which the
        # bot is part of: the participation policy treats it like a direct message.
        is_dm=True,
        origin=origin,
        ticket_id=event.ticket.id,
        command=command,
    )
