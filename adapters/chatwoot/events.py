"""Chatwoot Agent Bot events and their pure conversion to messages (and status sync commands)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.desk.schema import InvalidEvent, validate
from adapters.helpdesk import EVENT_PREFIX, SYNC_PREFIX, is_command_note
from bridge import lifecycle
from bridge.models import InboundMessage, Origin, ThreadKey

SOURCE = "chatwoot"
CONVERSATIONS = "conversations"
PENDING, OPEN, RESOLVED = "pending", "open", "resolved"

# Chatwoot's conversation status -> the bridge command that mirrors it.
STATUS_COMMANDS = {PENDING: "resume", OPEN: "handoff", RESOLVED: "resolve"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class Party(_Model):
    """A message sender (`type` contact, user or agent_bot) or a conversation's contact."""

    id: str = Field(min_length=1, max_length=40)
    name: str | None = Field(None, max_length=500)
    type: str | None = None


class Meta(_Model):
    sender: Party | None = None
    assignee: Party | None = None


class Conversation(_Model):
    """`id` is the display id, the one the account API takes."""

    id: str = Field(min_length=1, max_length=40)
    status: str = ""
    meta: Meta = Field(default_factory=Meta)


class Account(_Model):
    id: str = Field(min_length=1, max_length=40)


class BotEvent(_Model):
    """One delivery: a message's webhook data, or a conversation's, plus `event`."""

    event: str = Field(min_length=1, max_length=100)
    id: str | None = None
    account: Account | None = None
    # message events
    content: str | None = Field(None, max_length=100_000)
    message_type: str | None = None
    private: bool = False
    sender: Party | None = None
    conversation: Conversation | None = None
    created_at: datetime | None = None
    # conversation events carry the conversation's own fields at the top level
    status: str | None = None
    meta: Meta | None = None
    changed_attributes: Any = None


def parse_event(raw: bytes) -> BotEvent:
    return validate(BotEvent, raw)


def thread_key(account_id: str, conversation_id: str) -> ThreadKey:
    return ThreadKey(SOURCE, account_id, CONVERSATIONS, conversation_id)


def to_events(
    event: BotEvent,
    *,
    delivery: str,
    bridge_status: str | None,
    default_account: str = "",
    forward_private_notes: bool = False,
) -> tuple[InboundMessage, ...]:
    """The messages `event` stands for, in order; empty for what the bridge does not use.

    Chatwoot's status is the source of truth (pending: the bot's, open: a human's) and agent
    bots are not told when it changes to pending: a customer's message on a conversation whose
    status disagrees with the bridge's (`bridge_status`) is preceded by a command that syncs it.
    """
    account = event.account.id if event.account else default_account
    if not account:
        raise InvalidEvent("account", "Field required (or set CHATWOOT_ACCOUNT_ID)")
    if event.event == "message_created":
        return _message_events(event, account, bridge_status, forward_private_notes)
    if event.event in (
        "conversation_opened",
        "conversation_resolved",
        "conversation_status_changed",
    ):
        if event.id is None:
            raise InvalidEvent("id", "Field required")
        conversation = Conversation(
            id=event.id, status=event.status or "", meta=event.meta or Meta()
        )
        command = STATUS_COMMANDS.get(conversation.status)
        if command is None:
            return ()
        actor = conversation.meta.assignee.id if conversation.meta.assignee else "chatwoot"
        return (
            _message(event, account, conversation, f"{EVENT_PREFIX}{delivery}", actor, "", command),
        )
    return ()


def _message_events(
    event: BotEvent, account: str, bridge_status: str | None, forward_private_notes: bool
) -> tuple[InboundMessage, ...]:
    conversation, sender = event.conversation, event.sender
    if conversation is None or event.id is None:
        raise InvalidEvent("conversation", "Field required for message_created")
    text = (event.content or "").strip()
    kind = sender.type if sender else None
    if not text or kind not in ("contact", "user"):
        return ()  # the bot's own messages (agent_bot), activity and template messages
    assert sender is not None
    mid = f"message:{event.id}"
    if kind == "user":
        if event.private and not (forward_private_notes or is_command_note(text)):
            return ()
        staff = _message(event, account, conversation, mid, sender.id, text, origin=Origin.STAFF)
        return (staff,)
    customer = _message(event, account, conversation, mid, sender.id, text, name=sender.name)
    wanted = {PENDING: lifecycle.BOT, OPEN: lifecycle.HUMAN}.get(conversation.status)
    if bridge_status is None and wanted == lifecycle.HUMAN:
        return ()  # a conversation humans own that the bot never saw: not the bot's business
    if wanted is None or bridge_status in (None, wanted, lifecycle.RESOLVED):
        return (customer,)  # in step (a resolved thread is reopened by the message itself)
    command = STATUS_COMMANDS[conversation.status]
    sync = _message(
        event, account, conversation, f"{SYNC_PREFIX}{event.id}", "chatwoot", "", command
    )
    return (sync, customer)


def _message(
    event: BotEvent,
    account: str,
    conversation: Conversation,
    message_id: str,
    user_id: str,
    text: str,
    command: str | None = None,
    *,
    origin: Origin | None = None,
    name: str | None = None,
) -> InboundMessage:
    return InboundMessage(
        thread=thread_key(account, conversation.id),
        message_id=message_id,
        user_id=user_id,
        user_name=name,
        text=text,
        sent_at=event.created_at or datetime.now(UTC),
        is_dm=True,  # a support conversation is a private exchange with the team
        origin=origin or (Origin.STAFF if command else Origin.USER),
        ticket_id=conversation.id,
        command=command,
    )
