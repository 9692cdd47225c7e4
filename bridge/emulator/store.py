"""The built-in emulator's conversations, messages, runs, tags and feedback in a SQLite file.

Why SQLite and not the embedded Redis: the emulator stands in for a remote platform, so its data
must not mix with the bridge's own Redis keys (one store module owns those); and `run`, `chat`
and the maintenance commands open the same file from separate processes, which SQLite's locking
and `PRAGMA data_version` (it changes when another connection commits) make safe and cheap to
notice. WAL with `synchronous=NORMAL`: a commit costs no fsync, a crashed process loses nothing,
only a power cut can cost the last commits (like the embedded Redis's AOF, fsync every second).

Rows hold JSON documents; the emulator keeps working on its in-memory state and writes each
change through (see `EmulatorState`), so reading stays as fast as without a file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bridge.emulator.records import ConversationRecord, RunRecord
from bridge.engage.models import FeedbackRead, MessageRead, RunRead, TagRead

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, seq);
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tags (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    run_id TEXT NOT NULL, user_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (run_id, user_id));
"""
# A writer in another process holds the lock for one small transaction at a time.
_BUSY_TIMEOUT_MS = 10_000


@dataclass(slots=True)
class Snapshot:
    """Everything in the file, each table in insertion order (oldest first)."""

    conversations: dict[str, ConversationRecord] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    tags: dict[str, TagRead] = field(default_factory=dict)
    feedback: dict[tuple[str, str], FeedbackRead] = field(default_factory=dict)


def _conversation_json(record: ConversationRecord) -> str:
    return json.dumps(
        {
            "id": record.id,
            "org_id": record.org_id,
            "user_id": record.user_id,
            "data": record.data,
            "source": record.source,
            "created": record.created.isoformat(),
            "cloned_from_message_id": record.cloned_from_message_id,
            "tag_ids": record.tag_ids,
            "saved_by": sorted(record.saved_by),
        }
    )


def _conversation(body: str) -> ConversationRecord:
    doc = json.loads(body)
    return ConversationRecord(
        id=doc["id"],
        org_id=doc["org_id"],
        user_id=doc["user_id"],
        data=doc["data"],
        source=doc["source"],
        created=datetime.fromisoformat(doc["created"]),
        cloned_from_message_id=doc["cloned_from_message_id"],
        tag_ids=list(doc["tag_ids"]),
        saved_by=set(doc["saved_by"]),
    )


def _run_json(record: RunRecord) -> str:
    return json.dumps(
        {
            "read": record.read.model_dump(mode="json"),
            "user_id": record.user_id,
            "tag_ids": record.tag_ids,
        }
    )


def _run(body: str) -> RunRecord:
    doc = json.loads(body)
    return RunRecord(RunRead.model_validate(doc["read"]), doc["user_id"], list(doc["tag_ids"]))


class SqliteStore:
    """One connection, used under the emulator state's lock (any thread may hold it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0
        self._version = -1  # never loaded: the first `changed()` is True

    def close(self) -> None:
        self._db.close()

    def changed(self) -> bool:
        """True once after another connection (any process) committed a change."""
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return False
        self._version = version
        return True

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE: other processes' writes wait, so a check-then-write holds (nests)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def load(self) -> Snapshot:
        snap = Snapshot()
        db = self._db
        for (body,) in db.execute("SELECT body FROM conversations ORDER BY rowid"):
            record = _conversation(body)
            snap.conversations[record.id] = record
        for (body,) in db.execute("SELECT body FROM messages ORDER BY seq"):
            message = MessageRead.model_validate_json(body)
            if (owner := snap.conversations.get(message.conversation_id)) is not None:
                owner.messages.append(message)
        for (body,) in db.execute("SELECT body FROM runs ORDER BY rowid"):
            run = _run(body)
            snap.runs[run.read.id] = run
        for (body,) in db.execute("SELECT body FROM tags ORDER BY rowid"):
            tag = TagRead.model_validate_json(body)
            snap.tags[tag.id] = tag
        for user_id, body in db.execute("SELECT user_id, body FROM feedback ORDER BY rowid"):
            feedback = FeedbackRead.model_validate_json(body)
            snap.feedback[(feedback.run_id, user_id)] = feedback
        return snap

    def put_conversation(self, record: ConversationRecord) -> None:
        self._upsert("conversations", record.id, _conversation_json(record))

    def delete_conversation(self, conversation_id: str) -> None:
        self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        self._db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
        self._db.execute(
            "DELETE FROM runs WHERE json_extract(body, '$.read.conversation_id') = ?",
            (conversation_id,),
        )

    def add_messages(self, messages: Iterable[MessageRead]) -> None:
        self._db.executemany(
            "INSERT INTO messages (conversation_id, body) VALUES (?, ?)",
            [(m.conversation_id, m.model_dump_json()) for m in messages],
        )

    def put_run(self, record: RunRecord) -> None:
        self._upsert("runs", record.read.id, _run_json(record))

    def delete_run(self, run_id: str) -> None:
        self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def put_tag(self, tag: TagRead) -> None:
        self._upsert("tags", tag.id, tag.model_dump_json())

    def delete_tag(self, tag_id: str) -> None:
        self._db.execute("DELETE FROM tags WHERE id = ?", (tag_id,))

    def put_feedback(self, feedback: FeedbackRead) -> None:
        self._db.execute(
            "INSERT INTO feedback (run_id, user_id, body) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, user_id) DO UPDATE SET body = excluded.body",
            (feedback.run_id, feedback.user_id, feedback.model_dump_json()),
        )

    def clear(self) -> None:
        for table in ("conversations", "messages", "runs", "tags", "feedback"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608  # fixed names

    def _upsert(self, table: str, key: str, body: str) -> None:
        # ON CONFLICT keeps the rowid, so a changed row keeps its place in "oldest first".
        self._db.execute(
            f"INSERT INTO {table} (id, body) VALUES (?, ?) "  # noqa: S608  # fixed names
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            (key, body),
        )
