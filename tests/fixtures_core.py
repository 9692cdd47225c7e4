"""Fixtures for the core tests: recording adapters, message factories, a bridge on real Redis."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.adapter import Inbox
from bridge.config import FileConfig, Routing, Settings
from bridge.core import Bridge
from bridge.engage.client import EngageClient
from bridge.errors import PlatformError
from bridge.metrics import Metrics
from bridge.models import InboundMessage, Origin, Reply, ThreadKey

_ids = itertools.count(1)


def thread_key(n: int | str = 1, platform: str = "console") -> ThreadKey:
    return ThreadKey(platform, "W1", "C1", f"t{n}")


def message(
    thread: ThreadKey | None = None,
    text: str = "hello",
    *,
    message_id: str | None = None,
    user_id: str = "U1",
    user_name: str | None = "Ada",
    is_dm: bool = True,
    mentions_bot: bool = False,
    origin: Origin = Origin.USER,
    command: str | None = None,
    ticket_id: str | None = None,
) -> InboundMessage:
    return InboundMessage(
        thread=thread or thread_key(),
        message_id=message_id or f"m{next(_ids)}",
        user_id=user_id,
        text=text,
        sent_at=datetime.now(UTC),
        user_name=user_name,
        is_dm=is_dm,
        mentions_bot=mentions_bot,
        origin=origin,
        command=command,
        ticket_id=ticket_id,
        permalink="https://chat.example/p/1",
    )


@dataclass
class RecordingAdapter:
    """An adapter that keeps what it was asked to post, and can fail on demand."""

    name: str = "console"
    sent: list[Reply] = field(default_factory=list)
    statuses: list[tuple[ThreadKey, str | None]] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        await asyncio.Event().wait()

    async def send(self, reply: Reply) -> str:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append(reply)
        return f"p{len(self.sent)}"

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        self.statuses.append((thread, status))

    async def aclose(self) -> None:
        return None

    def texts(self, thread: ThreadKey | None = None) -> list[str]:
        return [r.text for r in self.sent if thread is None or r.thread == thread]


class RedisRecordingAdapter:
    """Posts go into a Redis list, so a test can see what other processes posted."""

    POSTS = "test:posts"

    def __init__(self, redis: aioredis.Redis, name: str = "console") -> None:
        self.name = name
        self._redis = redis

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        await asyncio.Event().wait()

    async def send(self, reply: Reply) -> str:
        record = {"thread": str(reply.thread), "text": reply.text, "key": reply.idempotency_key}
        try:
            n = await self._redis.rpush(self.POSTS, json.dumps(record))
        except Exception as exc:
            raise PlatformError(str(exc)) from exc
        return f"p{n}"

    async def aclose(self) -> None:
        return None


async def posts(redis: aioredis.Redis) -> list[dict[str, Any]]:
    return [json.loads(p) for p in await redis.lrange(RedisRecordingAdapter.POSTS, 0, -1)]


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 10.0,
    interval: float = 0.02,
) -> None:
    """Poll `predicate` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def core_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "lease_seconds": 1.0,
        "claim_idle_seconds": 2.0,
        "worker_block_seconds": 0.2,
        "agent_attempts": 3,
        "agent_backoff_seconds": 0.01,
        "agent_backoff_max_seconds": 0.05,
        "worker_concurrency": 16,
        "engage_api_key": "emulator-key",
        "engage_org_id": "emulator-org",
        "file": FileConfig(routing=Routing(default_agent="parrot")),
    }
    base.update(overrides)
    return Settings(**base)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


@asynccontextmanager
async def running(*bridges: Bridge) -> AsyncIterator[None]:
    """Run the bridges' workers for the block's duration."""
    tasks = [asyncio.create_task(b.run_workers()) for b in bridges]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def make_bridge(
    redis: aioredis.Redis,
    engage: Any,
    adapter: Any,
    settings: Settings | None = None,
    consumer: str | None = None,
) -> Bridge:
    return Bridge(
        settings=settings or core_settings(),
        redis=redis,
        engage=engage,
        adapters={adapter.name: adapter},
        metrics=Metrics(),
        consumer_name=consumer,
        sleep=no_sleep,
    )


@pytest.fixture
def adapter() -> RecordingAdapter:
    return RecordingAdapter()


NewCore = Callable[..., tuple[Bridge, RecordingAdapter]]


@pytest.fixture
def new_core(redis_client: aioredis.Redis, engage_client: EngageClient) -> NewCore:
    """The arrange step of the core's end-to-end tests: `new_core(settings)` is a bridge (the
    default core_settings() without them) with a RecordingAdapter of its own, on the test's
    Redis and Engage client, unless it is given others (`redis=any_redis`, `engage=`,
    `adapter=`, `consumer=`)."""

    def build(
        settings: Settings | None = None,
        *,
        redis: Any = None,
        engage: Any = None,
        adapter: RecordingAdapter | None = None,
        consumer: str | None = None,
    ) -> tuple[Bridge, RecordingAdapter]:
        adapter = adapter if adapter is not None else RecordingAdapter()
        redis = redis if redis is not None else redis_client
        engage = engage if engage is not None else engage_client
        return make_bridge(redis, engage, adapter, settings, consumer), adapter

    return build


async def until_sent(
    bridge: Bridge, adapter: RecordingAdapter, count: int = 1, timeout: float = 10.0
) -> None:
    """Run the bridge's workers until `adapter` has sent `count` replies."""
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == count, timeout=timeout)


@pytest.fixture
async def engage_client(request: pytest.FixtureRequest) -> AsyncIterator[EngageClient]:
    """The real client against the `emulator` fixture."""
    emulator = request.getfixturevalue("emulator")
    client = EngageClient(
        base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id, max_attempts=2
    )
    yield client
    await client.aclose()


class FakeEngage:
    """A narrow in-memory stand-in for EngageClient (unit tests of turn logic only)."""

    def __init__(self, delay: float = 0.0) -> None:
        from bridge.engage.models import ConversationReadFull, MessageRead

        self._conv_model = ConversationReadFull
        self._msg_model = MessageRead
        self.delay = delay
        self.conversations: dict[str, Any] = {}
        self.messages: dict[str, list[Any]] = {}
        self.chat_calls: list[tuple[str, list[str]]] = []
        self.fail_chat: list[Exception] = []
        self.fail_after_store: list[Exception] = []
        self._ids = itertools.count(1)

    def _id(self) -> str:
        return f"{next(self._ids):08d}"

    async def create_conversation(self, *, data: Any = None, source: str = "") -> Any:
        conv = self._conv_model(
            id=f"c{self._id()}",
            org_id="o",
            data=data or {},
            source=source,
            created=datetime.now(UTC),
            user_id="u",
        )
        self.conversations[conv.id] = conv
        self.messages[conv.id] = []
        return conv

    async def get_conversation(self, cid: str) -> Any:
        return self.conversations[cid]

    async def update_conversation(self, cid: str, *, data: Any = None, source: Any = None) -> Any:
        conv = self.conversations[cid]
        changes = {k: v for k, v in {"data": data, "source": source}.items() if v is not None}
        self.conversations[cid] = conv.model_copy(update=changes)
        return self.conversations[cid]

    async def search_own_conversations(
        self, *, limit: int = 20, offset: int = 0, reversed: bool = True, tag_id: Any = None
    ) -> list[Any]:
        items = list(self.conversations.values())
        if reversed:
            items.reverse()
        return items[offset : offset + limit]

    def _store(self, cid: str, role: str, content: str, name: str | None) -> Any:
        msg = self._msg_model(
            id=f"msg{self._id()}",
            org_id="o",
            conversation_id=cid,
            run_id="r",
            role=role,
            content=content,
            name=name,
            created=datetime.now(UTC),
        )
        if role != "status":
            self.messages[cid].append(msg)
        return msg

    async def add_messages(self, cid: str, msgs: Any) -> list[Any]:
        return [self._store(cid, m.role, m.content, m.name) for m in msgs]

    async def get_messages(self, cid: str) -> list[Any]:
        return list(self.messages[cid])

    async def get_conversation_runs(self, cid: str) -> list[Any]:
        # No run list: stored but unanswered messages look like a chat that was never processed.
        return []

    async def validate_agent(self, name: str) -> bool:
        return name in ("parrot", "pensions-questions-latest")

    async def chat_stream(self, cid: str, msgs: Any, *, agent: str, return_inputs: bool = False):  # type: ignore[no-untyped-def]
        if self.fail_chat:
            raise self.fail_chat.pop(0)
        self.chat_calls.append((cid, [m.content for m in msgs]))
        for m in msgs:
            self._store(cid, "user", m.content, m.name)
        if self.fail_after_store:
            raise self.fail_after_store.pop(0)
        yield self._store(cid, "status", "thinking", agent)
        if self.delay:
            await asyncio.sleep(self.delay)
        yield self._store(cid, "info", "tokens: 3", agent)
        last = [m for m in self.messages[cid] if m.role == "user"][-1]
        yield self._store(cid, "agent", f"You said: {last.content}", agent)
