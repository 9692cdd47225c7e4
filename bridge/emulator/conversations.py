"""The emulator's conversations and their messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from bridge.emulator.ids import new_id
from bridge.emulator.records import ApiUser, ConversationRecord, message_read, now
from bridge.emulator.tables import Tables
from bridge.engage.models import MessageBasic, MessageRead


class Conversations(Tables):
    """Create, find, change, clone and delete conversations; store and read their messages."""

    def create_conversation(
        self,
        user: ApiUser,
        *,
        data: dict[str, Any],
        source: str,
        cloned_from_message_id: str | None = None,
    ) -> ConversationRecord:
        record = ConversationRecord(
            id=new_id(),
            org_id=user.org_id,
            user_id=user.user_id,
            data=dict(data),
            source=source,
            created=now(),
            cloned_from_message_id=cloned_from_message_id,
        )
        with self._writing() as store:
            self.conversations[record.id] = record
            if store is not None:
                store.put_conversation(record)
        return record

    def delete_conversation(self, conversation_id: str) -> bool:
        """Drop a conversation with its messages and runs, as retention or an admin would."""
        with self._writing() as store:
            if self.conversations.pop(conversation_id, None) is None:
                return False
            for run_id, run in list(self.runs.items()):
                if run.read.conversation_id == conversation_id:
                    del self.runs[run_id]
            if store is not None:
                store.delete_conversation(conversation_id)
            return True

    def conversation(self, conversation_id: str, org_id: str) -> ConversationRecord | None:
        """A conversation visible to the organisation (any of its users may read it)."""
        with self._reading():
            record = self.conversations.get(conversation_id)
        return record if record is not None and record.org_id == org_id else None

    def find_conversations(
        self, keep: Callable[[ConversationRecord], bool]
    ) -> list[ConversationRecord]:
        """Matching conversations, oldest first."""
        with self._reading():
            return [c for c in self.conversations.values() if keep(c)]

    def update_conversation(
        self, conversation_id: str, *, data: dict[str, Any] | None, source: str | None
    ) -> None:
        with self._writing() as store:
            record = self.conversations[conversation_id]
            if data is not None:
                record.data = dict(data)
            if source is not None:
                record.source = source
            if store is not None:
                store.put_conversation(record)

    def set_saved(self, conversation_id: str, user_id: str, saved: bool) -> None:
        with self._writing() as store:
            record = self.conversations[conversation_id]
            if saved:
                record.saved_by.add(user_id)
            else:
                record.saved_by.discard(user_id)
            if store is not None:
                store.put_conversation(record)

    # Messages

    def messages(self, conversation_id: str) -> list[MessageRead]:
        """The stored history, oldest first (empty for an unknown conversation)."""
        with self._reading():
            record = self.conversations.get(conversation_id)
            return list(record.messages) if record is not None else []

    def append_messages(
        self,
        conversation_id: str,
        messages: Iterable[MessageBasic],
        *,
        run_id: str,
        user_id: str,
        name: str | None = None,
    ) -> list[MessageRead]:
        """Store messages in order. A conversation forgotten by `reset()` meanwhile drops them."""
        with self._writing() as store:
            record = self.conversations.get(conversation_id)
            if record is None:
                return []
            stored = [
                message_read(
                    m,
                    org_id=record.org_id,
                    conversation_id=record.id,
                    run_id=run_id,
                    user_id=user_id,
                    name=name,
                )
                for m in messages
            ]
            record.messages.extend(stored)
            if store is not None:
                store.add_messages(stored)
            return stored

    def find_message(self, message_id: str, org_id: str) -> MessageRead | None:
        with self._reading():
            for record in self.conversations.values():
                if record.org_id != org_id:
                    continue
                for message in record.messages:
                    if message.id == message_id:
                        return message
        return None

    def clone_conversation(
        self,
        message: MessageRead,
        user: ApiUser,
        *,
        data: dict[str, Any] | None,
        source: str | None,
    ) -> ConversationRecord:
        """A new conversation holding the history up to and including `message`."""
        with self._writing():
            original = self.conversations[message.conversation_id]
            cut = next(i for i, m in enumerate(original.messages) if m.id == message.id)
            clone = self.create_conversation(
                user,
                data=original.data if data is None else data,
                source=original.source if source is None else source,
                cloned_from_message_id=message.id,
            )
            for m in original.messages[: cut + 1]:
                basic = MessageBasic(role=m.role, content=m.content, name=m.name)
                self.append_messages(clone.id, [basic], run_id=m.run_id, user_id=user.user_id)
            return clone
