"""Support-desk thread lifecycle: bot -> human -> resolved -> reopened, the same on every platform.

`transition` is the pure state machine; `apply_transition` writes a transition to the Engage
Smarter conversation's metadata (keeping the rest of `data` and the `source`) and posts a notice.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bridge.engage.models import ConversationReadFull

BOT, HUMAN, RESOLVED = "bot", "human", "resolved"


class Event(enum.StrEnum):
    STAFF_MESSAGE = "staff_message"
    HANDOFF = "handoff"
    RESUME = "resume"
    RESOLVE = "resolve"
    USER_MESSAGE = "user_message"


@dataclass(frozen=True, slots=True)
class Transition:
    old: str
    new: str
    event: Event
    assignee: str | None

    @property
    def is_handoff(self) -> bool:
        return self.new == HUMAN


def transition(
    status: str, event: Event, *, actor: str | None = None, reopen_to: str = BOT
) -> Transition | None:
    """The transition `event` causes in a thread with `status`, or None when nothing changes."""
    new: str | None = None
    if event in (Event.STAFF_MESSAGE, Event.HANDOFF) and status != HUMAN:
        new = HUMAN
    elif event is Event.RESUME and status != BOT:
        new = BOT
    elif event is Event.RESOLVE and status != RESOLVED:
        new = RESOLVED
    elif event is Event.USER_MESSAGE and status == RESOLVED:
        new = reopen_to
    if new is None:
        return None
    # The staff member who wrote or was assigned (a desk's ticket.assigned is a HANDOFF by them).
    takes_over = event in (Event.STAFF_MESSAGE, Event.HANDOFF)
    assignee = actor if new == HUMAN and takes_over else None
    return Transition(old=status, new=new, event=event, assignee=assignee)


def notice_text(change: Transition, summary: str) -> str:
    """The short note posted in the thread; the hand-off note carries the conversation summary."""
    if change.new == HUMAN:
        if change.event is Event.USER_MESSAGE:
            text = "This thread is open again; a member of the team will reply."
        else:
            text = "Handing this thread over to a member of the team."
        return f"{text} Summary so far: {summary}" if summary.strip() else text
    if change.new == RESOLVED:
        return "This thread is marked as resolved. Write here again to reopen it."
    if change.event is Event.USER_MESSAGE:
        return "This thread is open again; the assistant will answer."
    return "The assistant is back in this thread."


class ConversationStore(Protocol):
    async def get_conversation(self, conversation_id: str) -> ConversationReadFull: ...

    async def update_conversation(
        self,
        conversation_id: str,
        *,
        data: dict[str, object] | None = ...,
        source: str | None = ...,
    ) -> ConversationReadFull: ...


async def apply_transition(
    engage: ConversationStore,
    conversation_id: str,
    change: Transition,
    post_notice: Callable[[str], Awaitable[None]],
    now: datetime | None = None,
) -> None:
    """Read-modify-write the conversation's `data` (status, assignee, time), then post a notice."""
    current = await engage.get_conversation(conversation_id)
    changed_at = (now or datetime.now(UTC)).isoformat()
    data = {
        **current.data,
        "status": change.new,
        "assignee": change.assignee,
        "status_changed_at": changed_at,
    }
    await engage.update_conversation(conversation_id, data=data, source=current.source)
    await post_notice(notice_text(change, current.summary))
