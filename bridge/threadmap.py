"""Thread key -> Engage Smarter conversation record in Redis, created exactly once per thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bridge.codec import text
from bridge.engage.client import EngageClient
from bridge.engage.models import ConversationRead
from bridge.models import InboundMessage, ThreadKey
from bridge.store import Namespace, RedisClient, Store, keys
from bridge.store.records import Records
from bridge.store.threads import Claim, CreateClaim

__all__ = ["Ensured", "RedisClient", "ThreadMap", "ThreadRecord"]

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """What Redis knows about one thread. `history_mark` is the id of the last conversation
    message a completed turn saw: a retried turn only looks at the history after it."""

    thread_key: str
    conversation_id: str
    agent: str
    source: str
    status: str = "bot"
    assignee: str = ""
    created: str = ""
    updated: str = ""
    last_message_id: str = ""
    history_mark: str = ""
    previous_conversation_id: str = ""
    starter: str = ""  # the user whose message created the conversation (bridge.permissions)

    @property
    def thread(self) -> ThreadKey:
        return ThreadKey.parse(self.thread_key)

    def to_hash(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> ThreadRecord | None:
        fields = {text(k): text(v) for k, v in raw.items()}
        if not fields.get("conversation_id"):
            return None
        known = {name: fields.get(name, "") for name in cls.__dataclass_fields__}
        return cls(**known)


def conversation_data(
    message: InboundMessage, facts: dict[str, str] | None = None
) -> dict[str, Any]:
    """The `data` a new conversation is created with; `facts` = what the adapter noted about the
    thread before (keys.facts)."""
    t = message.thread
    # The adapter's facts and context first: the core's own fields always win.
    return (
        dict(facts or {})
        | dict(message.context)
        | {
            "user_id": message.user_id,
            "user_name": message.user_name,
            "ticket_id": message.ticket_id or t.thread,
            "thread_key": str(t),
            "platform": t.platform,
            "workspace_id": t.workspace,
            "channel_id": t.channel,
            "thread_id": t.thread,
            "permalink": message.permalink,
            "status": "bot",
        }
    )


def record_from_conversation(conversation: ConversationRead, agent: str) -> ThreadRecord | None:
    key = conversation.data.get("thread_key")
    if not isinstance(key, str) or not key:
        return None
    status = conversation.data.get("status")
    assignee = conversation.data.get("assignee")
    return ThreadRecord(
        thread_key=key,
        conversation_id=conversation.id,
        agent=agent,
        source=conversation.source,
        status=status if status in ("bot", "human", "resolved") else "bot",
        assignee=assignee if isinstance(assignee, str) else "",
        starter=str(conversation.data.get("user_id") or ""),
        created=conversation.created.isoformat(),
        updated=_now(),
    )


@dataclass(frozen=True, slots=True)
class Ensured:
    """What `ThreadMap.ensure_started` found or made; `writing` is a new record's write."""

    record: ThreadRecord
    created: bool
    writing: asyncio.Task[ThreadRecord] | None = None


class ThreadMap:
    """Records as Redis hashes with an idle TTL refreshed on every write."""

    def __init__(self, store: Store | RedisClient, *, idle_ttl_seconds: int | None = None) -> None:
        if not isinstance(store, Store):
            store = Store(store, record_ttl_seconds=idle_ttl_seconds or 30 * 24 * 3600)
        self._records: Records = store.records

    async def get(self, thread: ThreadKey | str) -> ThreadRecord | None:
        return ThreadRecord.from_hash(await self._records.get(thread))

    async def status(self, thread: ThreadKey | str) -> str | None:
        return await self._records.status(thread)

    async def put(self, record: ThreadRecord, *, unclaim: bool = False) -> ThreadRecord:
        await self._records.put(record.thread_key, record.to_hash(), unclaim=unclaim)
        return record

    async def update(self, record: ThreadRecord, **changes: str) -> ThreadRecord:
        return await self.put(replace(record, updated=_now(), **changes))

    async def note_facts(self, thread: ThreadKey, facts: dict[str, str]) -> None:
        """Replace what is known about a thread for its conversation's `data` (merged in when
        the conversation is created: no round trip on the ingress path)."""
        await self._records.note_facts(thread, facts)

    async def adopt_facts(self, old: Namespace, part: str) -> int:
        """Move facts an adapter noted under `old.thread(thread, part)` before they were thread
        facts (see Records.adopt_facts); returns how many moved."""
        return await self._records.adopt_facts(old, part)

    async def forget(self, thread: ThreadKey | str) -> bool:
        """Drop the record (the next message creates a new conversation); keep pending work."""
        return await self._records.forget(thread)

    async def list(self, limit: int = 1000) -> list[ThreadRecord]:
        records: list[ThreadRecord] = []
        async for thread_key in self._records.thread_keys():
            record = await self.get(thread_key)
            if record is not None:
                records.append(record)
            if len(records) >= limit:
                break
        return sorted(records, key=lambda r: r.updated, reverse=True)

    async def ensure(
        self,
        engage: EngageClient,
        message: InboundMessage,
        agent: str,
        *,
        read: ThreadRecord | bool | None = True,
        claim: CreateClaim | None = None,
    ) -> tuple[ThreadRecord, bool]:
        """The thread's record, creating its conversation if there is none (lease holder only):
        `ensure_started` with the new record written before it returns. Returns (record,
        created)."""
        ensured = await self.ensure_started(engage, message, agent, read=read, claim=claim)
        if ensured.writing is not None:
            await ensured.writing
        return ensured.record, ensured.created

    async def ensure_started(
        self,
        engage: EngageClient,
        message: InboundMessage,
        agent: str,
        *,
        read: ThreadRecord | bool | None = True,
        claim: CreateClaim | None = None,
    ) -> Ensured:
        """The thread's record, creating its conversation if there is none (lease holder only);
        a new record's write is left in flight (`Ensured.writing`: await it before the turn
        commits), so the turn's chat need not wait for it.

        `read` is the record the lease holder already read (None: there was none), or True to
        read it here. A create-claim marks a create in flight: if it is still there when a (new)
        lease holder comes, the previous holder may have died between the create and the Redis
        write, so the conversation is searched for by `data.thread_key` before another is
        created. `claim` is the claim the turn's `begin` took or found (taken here otherwise).
        That search is also why the write may run alongside the chat: a holder that dies before
        the write landed leaves the claim, and the next one finds the conversation and reconciles
        with its history (it holds a journal: the chat may have happened).
        """
        thread = message.thread
        existing = await self.get(thread) if read is True else read
        if isinstance(existing, ThreadRecord):
            return Ensured(existing, created=False)
        if claim is None or claim.state is Claim.NONE:
            search = not await self._records.claim_create(thread)
        else:
            search = claim.search_first
        if search:
            found = await find_conversation(engage, str(thread))
            if found is not None:
                record = record_from_conversation(found, agent)
                if record is not None:
                    log.info(
                        "recovered conversation of a create that crashed",
                        extra={"thread_key": str(thread), "conversation_id": found.id},
                    )
                    await self.put(record, unclaim=True)
                    return Ensured(record, created=False)
        if claim is not None:
            claim.tried = True
        facts = claim.facts if claim is not None else None
        conversation = await engage.create_conversation(
            data=conversation_data(message, facts), source=message.platform
        )
        now = _now()
        record = ThreadRecord(
            thread_key=str(thread),
            conversation_id=conversation.id,
            agent=agent,
            source=message.platform,
            created=now,
            updated=now,
            starter=message.user_id,
        )
        writing = asyncio.create_task(self.put(record, unclaim=True))
        log.info(
            "conversation created",
            extra={"thread_key": str(thread), "conversation_id": conversation.id},
        )
        return Ensured(record, created=True, writing=writing)

    async def renew(
        self,
        engage: EngageClient,
        old: ThreadRecord,
        message: InboundMessage,
        *,
        agent: str,
        reset: bool,
    ) -> ThreadRecord:
        """Move the thread to a new conversation (lease holder only); returns the new record.

        `reset` starts afresh (back to the bot); otherwise the old conversation is gone upstream
        and the thread keeps its status. The new conversation's `data`
        names the old one. A create that crashed before the swap is found again by search, as in
        `ensure`; if another holder swapped first, its record wins.
        """
        thread = old.thread
        conversation: ConversationRead | None = None
        if not await self._records.claim_create(thread):
            found = await find_conversation(engage, str(thread))
            if found is not None and found.data.get("previous_conversation_id") == (
                old.conversation_id
            ):
                conversation = found
        status, assignee = ("bot", "") if reset else (old.status, old.assignee)
        if conversation is None:
            facts = await self._records.facts(thread)
            data = conversation_data(message, facts) | {
                "status": status,
                "previous_conversation_id": old.conversation_id,
            }
            if assignee:
                data["assignee"] = assignee
            conversation = await engage.create_conversation(data=data, source=old.source)
        now = _now()
        new = replace(
            old,
            conversation_id=conversation.id,
            agent=agent,
            status=status,
            assignee=assignee,
            created=now,
            updated=now,
            history_mark="",
            previous_conversation_id=old.conversation_id,
        )
        swapped = await self._records.swap(thread, old.conversation_id, new.to_hash())
        await self._records.release_create(thread)
        if not swapped:
            return await self.get(thread) or new
        log.info(
            "thread moved to a new conversation (%s)",
            "reset" if reset else "the old one is gone",
            extra={"thread_key": str(thread), "conversation_id": conversation.id},
        )
        return new


async def find_conversation(engage: EngageClient, thread_key: str) -> ConversationRead | None:
    """The newest own conversation whose data names `thread_key`, searching recent pages only."""
    for page in range(keys.SEARCH_PAGES_ON_RECOVERY):
        batch = await engage.search_own_conversations(
            limit=keys.SEARCH_PAGE_SIZE, offset=page * keys.SEARCH_PAGE_SIZE, reversed=True
        )
        for conversation in batch:
            if conversation.data.get("thread_key") == thread_key:
                return conversation
        if len(batch) < keys.SEARCH_PAGE_SIZE:
            return None
    return None


async def rebuild_map(
    threads: ThreadMap,
    engage: EngageClient,
    agent_for: Callable[[ThreadKey], str],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rewrite every record from the conversations' `data.thread_key` (newest wins per key);
    `progress` is told how many conversations each page held."""
    seen: set[str] = set()
    offset = 0
    while True:
        batch = await engage.search_own_conversations(
            limit=keys.SEARCH_PAGE_SIZE, offset=offset, reversed=True
        )
        for conversation in batch:
            key = conversation.data.get("thread_key")
            if not isinstance(key, str) or key in seen:
                continue
            try:
                agent = agent_for(ThreadKey.parse(key))
            except ValueError:
                continue
            record = record_from_conversation(conversation, agent)
            if record is None:
                continue
            seen.add(record.thread_key)
            await threads.put(record)
        if progress is not None:
            progress(len(batch))
        if len(batch) < keys.SEARCH_PAGE_SIZE:
            return len(seen)
        offset += len(batch)
