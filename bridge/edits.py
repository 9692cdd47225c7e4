"""Edits and deletes of user messages, on every platform.

A message still waiting in its thread's inbox is changed in place (edit) or withdrawn (delete) by
one atomic script. Once a turn has read it (it is in the turn's journal, even if its chat has not
reached the agent yet), it is too late for that: an edit becomes a short annotated follow-up
("edited: …") that the agent answers as a correction (or nothing, by policy), a delete becomes a
note in the conversation's history that gets no answer (`NOTE_COMMAND`, see bridge.turn.plan).
There is no window between the two: a message no turn has read is still waiting, also while the
lease is held between two turns. A message the bridge never accepted gets its edited text
submitted normally (the edit may add the mention that was missing); its delete changes nothing.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import replace
from datetime import UTC, datetime

from bridge.adapter import Inbox
from bridge.codec import encode_message
from bridge.models import InboundMessage, ThreadKey
from bridge.store import RedisClient
from bridge.store.revise import PendingRevisions

log = logging.getLogger(__name__)

NOTE_COMMAND = "note"
"""`InboundMessage.command` of a history note: recorded in the conversation, never answered."""
EDITED_PREFIX = "edited: "


class Fate(enum.StrEnum):
    PENDING = "pending"
    TAKEN = "taken"
    UNKNOWN = "unknown"


class Revisions:
    """What adapters call when a platform reports an edit or a delete."""

    def __init__(self, redis: RedisClient, *, follow_up_edits: bool = True) -> None:
        self._pending = PendingRevisions(redis)
        self._follow_up_edits = follow_up_edits

    async def edited(self, inbox: Inbox, message: InboundMessage, edit_id: str) -> str:
        """`message` carries the edited text; `edit_id` is unique per edit (its timestamp),
        the same for a redelivery of it. Returns what was done (for logs and tests)."""
        fate = await self._revise(message.thread, message.message_id, encode_message(message))
        if fate is Fate.PENDING:
            outcome = "replaced before its turn"
        elif fate is Fate.UNKNOWN and not await self._was_seen(message.thread, message.message_id):
            outcome = (await inbox.submit(message)).reason
        elif not self._follow_up_edits:
            outcome = "edit after the turn ignored (policy)"
        else:
            follow_up = replace(
                message,
                message_id=f"{message.message_id}:edit:{edit_id}",
                text=f"{EDITED_PREFIX}{message.text}",
                attachments=(),
            )
            outcome = "follow-up: " + (await inbox.submit(follow_up)).reason
        log.info("edit of message %s: %s", message.message_id, outcome,
                 extra={"thread_key": str(message.thread)})  # fmt: skip
        return outcome

    async def deleted(
        self,
        inbox: Inbox,
        thread: ThreadKey,
        message_id: str,
        *,
        user_id: str = "",
        is_dm: bool = False,
    ) -> str:
        fate = await self._revise(thread, message_id, "")
        if fate is Fate.PENDING:
            outcome = "withdrawn before its turn"
        elif fate is Fate.UNKNOWN and not await self._was_seen(thread, message_id):
            outcome = "never accepted: nothing to do"
        else:
            note = InboundMessage(
                thread=thread,
                message_id=f"{message_id}:deleted",
                user_id=user_id,
                text=f"(The earlier message {message_id} was deleted from the chat.)",
                sent_at=datetime.now(UTC),
                is_dm=is_dm,
                command=NOTE_COMMAND,
            )
            outcome = "noted: " + (await inbox.submit(note)).reason
        log.info("delete of message %s: %s", message_id, outcome,
                 extra={"thread_key": str(thread)})  # fmt: skip
        return outcome

    async def _revise(self, thread: ThreadKey, message_id: str, payload: str) -> Fate:
        return Fate(await self._pending.revise(thread, message_id, payload))

    async def _was_seen(self, thread: ThreadKey, message_id: str) -> bool:
        return await self._pending.was_seen(thread, message_id)
