"""Web transcripts in Redis: ordered, idempotent per key, readable from any process."""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.web import create_adapter
from adapters.web.store import Entry, TranscriptStore, status_key, transcript_key
from bridge.config import Settings
from bridge.models import Reply, ReplyKind, ThreadKey

THREAD = ThreadKey("web", "playground", "local", "abc123")


async def test_entries_come_back_in_order_with_positions(redis_client: aioredis.Redis) -> None:
    store = TranscriptStore(redis_client, ttl_seconds=60)
    await store.append(THREAD, "m1", Entry(role="user", text="hi"))
    await store.append(THREAD, "m2", Entry(role="agent", text="hello", name="parrot"))
    entries = await store.read(THREAD)
    assert [(e["seq"], e["role"], e["text"]) for e in entries] == [
        (1, "user", "hi"),
        (2, "agent", "hello"),
    ]
    assert entries[0]["at"]
    assert [e["seq"] for e in await store.read(THREAD, after=1)] == [2]


async def test_a_repeated_idempotency_key_appends_nothing(redis_client: aioredis.Redis) -> None:
    store = TranscriptStore(redis_client, ttl_seconds=60)
    first = await store.append(THREAD, "a1", Entry(role="agent", text="once"))
    again = await store.append(THREAD, "a1", Entry(role="agent", text="once"))
    assert first == again == 1
    assert len(await store.read(THREAD)) == 1


async def test_transcripts_expire_after_the_idle_ttl(redis_client: aioredis.Redis) -> None:
    store = TranscriptStore(redis_client, ttl_seconds=60)
    await store.append(THREAD, "m1", Entry(role="user", text="hi"))
    assert 0 < await redis_client.ttl(transcript_key(THREAD)) <= 60


async def test_status_line_is_set_with_a_ttl_and_cleared(redis_client: aioredis.Redis) -> None:
    store = TranscriptStore(redis_client, ttl_seconds=60)
    await store.set_status(THREAD, "Looking it up...")
    assert await store.status(THREAD) == "Looking it up..."
    assert await redis_client.ttl(status_key(THREAD)) > 0
    await store.set_status(THREAD, None)
    assert await store.status(THREAD) is None


async def test_adapter_send_is_idempotent_and_visible_to_another_process(
    redis_client: aioredis.Redis,
) -> None:
    settings = Settings()
    adapter = create_adapter(settings, redis_client)
    reply = Reply(thread=THREAD, text="Answer", idempotency_key="agent-msg-1", agent="parrot")
    assert await adapter.send(reply) == "web-1"
    assert await adapter.send(reply) == "web-1"
    notice = Reply(thread=THREAD, text="Handing over", idempotency_key="n1", kind=ReplyKind.NOTICE)
    await adapter.send(notice)
    # A second adapter on the same Redis stands for another bridge process serving the page.
    other = create_adapter(settings, redis_client)
    entries = await other.store.read(THREAD)
    assert [(e["role"], e["text"], e["name"]) for e in entries] == [
        ("agent", "Answer", "parrot"),
        ("notice", "Handing over", None),
    ]
