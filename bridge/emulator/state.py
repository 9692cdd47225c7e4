"""The emulator's in-memory state, with the queries and changes the routes and tests need.

Why in memory: an emulator exists to be thrown away. Each test gets a fresh, empty state
(`reset()`), nothing touches disk, and nothing can leak from one test run into the next.
Every method holds one `threading.RLock` and never awaits while holding it, so the state is
consistent on the server's event loop and for a test thread inspecting it at the same time.

With a `store` (the built-in emulator of `engage-bridge run`), every change is also written to
it in the same step, and the memory is reloaded whenever another process changed the file, so
threads survive restarts and `run`, `chat` and the maintenance commands see one platform.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from bridge.emulator.agents import Agent, builtin_agents
from bridge.emulator.ids import new_id
from bridge.emulator.records import ApiUser, ConversationRecord, RunRecord, message_read, now
from bridge.emulator.store import SqliteStore
from bridge.engage.models import (
    FeedbackRead,
    FeedbackUpsert,
    MessageBasic,
    MessageRead,
    RunRead,
    TagRead,
)

DEFAULT_API_KEY = "emulator-key"
DEFAULT_ORG_ID = "emulator-org"
DEFAULT_USER_ID = "emulator-user"
OTHER_API_KEY = "emulator-key-2"
OTHER_ORG_ID = "emulator-org-2"
OTHER_USER_ID = "emulator-user-2"


def default_api_keys() -> dict[str, ApiUser]:
    return {
        DEFAULT_API_KEY: ApiUser(DEFAULT_USER_ID, DEFAULT_ORG_ID),
        OTHER_API_KEY: ApiUser(OTHER_USER_ID, OTHER_ORG_ID),
    }


class _Locked:
    """`with` the lock, giving no store: writing in memory as cheaply as the bare lock."""

    __slots__ = ("_lock",)

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class EmulatorState:
    """Users, conversations, messages, runs, tags and feedback. Tests may read it directly."""

    def __init__(
        self, api_keys: Mapping[str, ApiUser] | None = None, *, store: SqliteStore | None = None
    ) -> None:
        self._lock = threading.RLock()
        self._locked = _Locked(self._lock)
        self._store = store
        self._initial_keys = dict(api_keys) if api_keys is not None else default_api_keys()
        self.users: dict[str, ApiUser] = dict(self._initial_keys)
        self.conversations: dict[str, ConversationRecord] = {}
        self.runs: dict[str, RunRecord] = {}
        self.tags: dict[str, TagRead] = {}
        self.feedback: dict[tuple[str, str], FeedbackRead] = {}
        self.agents: dict[str, Agent] = builtin_agents()
        with self._reading():
            pass  # loads what the store holds

    def reset(self) -> None:
        """Forget everything but the initial API keys; built-in agents only."""
        with self._writing() as store:
            self.users = dict(self._initial_keys)
            self.conversations.clear()
            self.runs.clear()
            self.tags.clear()
            self.feedback.clear()
            self.agents = builtin_agents()
            if store is not None:
                store.clear()

    def _reading(self) -> AbstractContextManager[object]:
        # In memory: the bare lock (a generator-based context manager costs ~1 us per call).
        return self._lock if self._store is None else self._synced_read(self._store)

    def _writing(self) -> AbstractContextManager[SqliteStore | None]:
        """The lock and, with a store, one transaction: the change and its write, or neither."""
        return self._locked if self._store is None else self._synced_write(self._store)

    @contextlib.contextmanager
    def _synced_read(self, store: SqliteStore) -> Iterator[None]:
        with self._lock:
            if store.changed():
                self._reload(store)
            yield

    @contextlib.contextmanager
    def _synced_write(self, store: SqliteStore) -> Iterator[SqliteStore]:
        with self._lock, store.transaction():
            if store.changed():
                self._reload(store)
            yield store

    def _reload(self, store: SqliteStore) -> None:
        # In place: tests and routes may hold these dicts.
        snap = store.load()
        self.conversations.clear()
        self.conversations.update(snap.conversations)
        self.runs.clear()
        self.runs.update(snap.runs)
        self.tags.clear()
        self.tags.update(snap.tags)
        self.feedback.clear()
        self.feedback.update(snap.feedback)

    # Users and agents

    def user_for_key(self, api_key: str) -> ApiUser | None:
        with self._lock:
            return self.users.get(api_key)

    def add_user(self, api_key: str, user: ApiUser) -> None:
        with self._lock:
            self.users[api_key] = user

    def register_agent(self, agent: Agent) -> None:
        with self._lock:
            self.agents[agent.metadata.name] = agent

    def agent_map(self) -> dict[str, Agent]:
        with self._lock:
            return dict(self.agents)

    def agent(self, name: str) -> Agent | None:
        with self._lock:
            return self.agents.get(name)

    # Conversations

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

    # Runs

    def record_run(self, user: ApiUser, conversation_id: str, agent: str) -> RunRead:
        run = RunRead(
            id=new_id(),
            org_id=user.org_id,
            conversation_id=conversation_id,
            agent=agent,
            test=False,
            created=now(),
        )
        record = RunRecord(read=run, user_id=user.user_id)
        with self._writing() as store:
            self.runs[run.id] = record
            if store is not None:
                store.put_run(record)
        return run

    def drop_unanswered_runs(self) -> int:
        """Forget runs with no agent message: called when no process that could still be
        running them is alive (a restart after a kill), so a client retrying asks again
        instead of waiting for an answer that cannot come. Returns how many."""
        with self._writing() as store:
            answered = {
                m.run_id
                for c in self.conversations.values()
                for m in c.messages
                if m.role != "user"
            }
            dead = [run_id for run_id in self.runs if run_id not in answered]
            for run_id in dead:
                del self.runs[run_id]
                if store is not None:
                    store.delete_run(run_id)
        return len(dead)

    def runs_for(self, conversation_id: str) -> list[RunRead]:
        """Every chat call on the conversation, oldest first: one run per agent call."""
        with self._reading():
            return [r.read for r in self.runs.values() if r.read.conversation_id == conversation_id]

    def run(self, run_id: str, org_id: str) -> RunRecord | None:
        with self._reading():
            record = self.runs.get(run_id)
        return record if record is not None and record.read.org_id == org_id else None

    def find_runs(self, keep: Callable[[RunRecord], bool]) -> list[RunRecord]:
        with self._reading():
            return [r for r in self.runs.values() if keep(r)]

    def run_messages(self, run_id: str) -> list[MessageRead]:
        with self._reading():
            record = self.runs.get(run_id)
            if record is None:
                return []
            history = self.messages(record.read.conversation_id)
        return [m for m in history if m.run_id == run_id]

    # Tags

    def create_tag(self, org_id: str, name: str, description: str) -> TagRead | None:
        """None when the organisation already has a tag with that name."""
        with self._writing() as store:
            if any(t.org_id == org_id and t.name == name for t in self.tags.values()):
                return None
            tag = TagRead(id=new_id(), org_id=org_id, name=name, description=description)
            self.tags[tag.id] = tag
            if store is not None:
                store.put_tag(tag)
            return tag

    def tags_in(self, org_id: str) -> list[TagRead]:
        """An organisation's tags, oldest first."""
        with self._reading():
            return [t for t in self.tags.values() if t.org_id == org_id]

    def tag(self, tag_id: str, org_id: str) -> TagRead | None:
        with self._reading():
            tag = self.tags.get(tag_id)
        return tag if tag is not None and tag.org_id == org_id else None

    def tags_of(self, tag_ids: Sequence[str]) -> list[TagRead]:
        with self._reading():
            return [self.tags[t] for t in tag_ids if t in self.tags]

    def update_tag(self, tag_id: str, description: str | None) -> TagRead:
        with self._writing() as store:
            tag = self.tags[tag_id]
            if description is not None:
                tag = tag.model_copy(update={"description": description})
                self.tags[tag_id] = tag
                if store is not None:
                    store.put_tag(tag)
            return tag

    def delete_tag(self, tag_id: str) -> None:
        with self._writing() as store:
            self.tags.pop(tag_id, None)
            if store is not None:
                store.delete_tag(tag_id)
            for conversation in self.conversations.values():
                if tag_id in conversation.tag_ids:
                    conversation.tag_ids.remove(tag_id)
                    if store is not None:
                        store.put_conversation(conversation)
            for run in self.runs.values():
                if tag_id in run.tag_ids:
                    run.tag_ids.remove(tag_id)
                    if store is not None:
                        store.put_run(run)

    def set_tagged(
        self, owner: ConversationRecord | RunRecord, tag_id: str, tagged: bool
    ) -> list[TagRead]:
        """Add or remove a tag on a conversation or a run; all its tags after."""
        with self._writing() as store:
            # The caller's record may predate a reload: change the current one.
            if isinstance(owner, ConversationRecord):
                owner = self.conversations.get(owner.id, owner)
            else:
                owner = self.runs.get(owner.read.id, owner)
            tag_ids = owner.tag_ids
            if tagged and tag_id not in tag_ids:
                tag_ids.append(tag_id)
            if not tagged and tag_id in tag_ids:
                tag_ids.remove(tag_id)
            if store is not None:
                if isinstance(owner, ConversationRecord):
                    store.put_conversation(owner)
                else:
                    store.put_run(owner)
            return self.tags_of(tag_ids)

    # Feedback

    def upsert_feedback(self, run: RunRead, user_id: str, upsert: FeedbackUpsert) -> FeedbackRead:
        changes = upsert.model_dump(exclude_none=True)
        with self._writing() as store:
            old = self.feedback.get((run.id, user_id))
            if old is None:
                new = FeedbackRead(
                    id=new_id(),
                    org_id=run.org_id,
                    conversation_id=run.conversation_id,
                    run_id=run.id,
                    user_id=user_id,
                    created=now(),
                    **changes,
                )
            else:
                new = old.model_copy(update={**changes, "updated": now()})
            self.feedback[(run.id, user_id)] = new
            if store is not None:
                store.put_feedback(new)
            return new

    def feedback_where(self, keep: Callable[[FeedbackRead], bool]) -> list[FeedbackRead]:
        with self._reading():
            return [f for f in self.feedback.values() if keep(f)]
