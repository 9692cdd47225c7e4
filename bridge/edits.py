"""Edits and deletes of user messages, on every platform.

A message still waiting in its thread's inbox is changed in place (edit) or withdrawn (delete) by
one atomic script. Once a turn has it, it is too late for that: an edit becomes a short annotated
follow-up ("edited: …") that the agent answers as a correction (or nothing, by policy), a delete
becomes a note in the conversation's history that gets no answer (`NOTE_COMMAND`, see
bridge.turn.plan). A message the bridge never accepted gets its edited text submitted normally
(the edit may add the mention that was missing); its delete changes nothing.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import replace
from datetime import UTC, datetime

from redis.commands.core import AsyncScript

from bridge.adapter import Inbox
from bridge.codec import encode_message
from bridge.models import InboundMessage, ThreadKey
from bridge.store import RedisClient, keys, storage

log = logging.getLogger(__name__)

NOTE_COMMAND = "note"
"""`InboundMessage.command` of a history note: recorded in the conversation, never answered."""
EDITED_PREFIX = "edited: "

# KEYS: inbox, lease, turn. ARGV: message id, new payload ('' withdraws the message).
# -> 'pending' changed or withdrawn, 'taken' a turn may have read it, 'unknown' not waiting.
# One step: the worker's commit trims the inbox by position, so nothing inside the batch a turn
# works on may move. That batch is the journal's ids (the inbox's head); while the lease is held
# without a journal, the holder may have read any entry, so every entry counts as taken.
REVISE_PENDING = """
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
local index = nil
for i, raw in ipairs(entries) do
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and decoded['message_id'] == ARGV[1] then
    index = i
    break
  end
end
if index == nil then
  return 'unknown'
end
local journal = redis.call('HGET', KEYS[3], 'ids')
if journal then
  local ids = cjson.decode(journal)
  if index <= #ids then
    return 'taken'
  end
  for _, id in ipairs(ids) do
    if id == ARGV[1] then
      return 'taken'
    end
  end
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  return 'taken'
end
if ARGV[2] == '' then
  redis.call('LREM', KEYS[1], 1, entries[index])
else
  redis.call('LSET', KEYS[1], index - 1, ARGV[2])
end
return 'pending'
"""


class Fate(enum.StrEnum):
    PENDING = "pending"
    TAKEN = "taken"
    UNKNOWN = "unknown"


class Revisions:
    """What adapters call when a platform reports an edit or a delete."""

    def __init__(self, redis: RedisClient, *, follow_up_edits: bool = True) -> None:
        self._redis = redis
        self._script: AsyncScript = redis.register_script(REVISE_PENDING)
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
        script_keys = [keys.inbox(thread), keys.lease(thread), keys.turn(thread)]
        async with storage("revise"):
            raw = await self._script(keys=script_keys, args=[message_id, payload])
        return Fate(raw.decode() if isinstance(raw, bytes) else str(raw))

    async def _was_seen(self, thread: ThreadKey, message_id: str) -> bool:
        async with storage("revise"):
            return bool(await self._redis.exists(keys.seen(thread, message_id)))
