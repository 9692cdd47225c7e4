"""The emulator's tables in memory, under one lock, kept in step with an optional SQLite store.

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
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager

from bridge.emulator.agents import Agent, builtin_agents
from bridge.emulator.records import ApiUser, ConversationRecord, RunRecord
from bridge.emulator.store import SqliteStore
from bridge.engage.models import FeedbackRead, TagRead


class _Locked:
    """`with` the lock, giving no store: writing in memory as cheaply as the bare lock."""

    __slots__ = ("_lock",)

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class Tables:
    """Users, conversations, runs, tags, feedback and agents; how a change reads and writes them."""

    def __init__(self, api_keys: Mapping[str, ApiUser], *, store: SqliteStore | None) -> None:
        self._lock = threading.RLock()
        self._locked = _Locked(self._lock)
        self._store = store
        self._initial_keys = dict(api_keys)
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
