"""Outbound: posting once per idempotency key, and the sign shown when a message is accepted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bridge.engage.client import EngageClient
from bridge.errors import PlatformError
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.store.parts import Parts, PartState
from tests.fixtures_core import (
    RecordingAdapter,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)


@dataclass
class SigningAdapter(RecordingAdapter):
    """Records accept signs next to status changes, in the order the platform saw them."""

    signs: list[ThreadKey] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    sign_delay: float = 0.0

    async def show_accepted(self, thread: ThreadKey) -> None:
        await asyncio.sleep(self.sign_delay)
        self.signs.append(thread)
        self.events.append("sign")

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        await super().set_status(thread, status)
        self.events.append(f"status:{status}")

    async def send(self, reply: Reply) -> str:
        self.events.append("post")
        return await super().send(reply)


async def test_an_accepted_message_shows_a_sign_before_any_worker_takes_it(
    redis_client: aioredis.Redis, engage_client: EngageClient
) -> None:
    adapter = SigningAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    thread = thread_key("sign")
    assert (await bridge.submit(message(thread, "hello", message_id="s1"))).accepted
    await wait_until(lambda: adapter.signs == [thread])
    # No sign for a duplicate, a command or an ignored message.
    await bridge.submit(message(thread, "hello", message_id="s1"))
    await bridge.submit(message(thread, "status"))
    ignored = message(thread_key("other"), "not for the bot", is_dm=False)
    assert not (await bridge.submit(ignored)).accepted
    await asyncio.sleep(0)
    assert adapter.signs == [thread]


async def test_a_slow_sign_lands_before_the_status_is_cleared_and_the_answer_posted(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = SigningAdapter(sign_delay=0.3)
    bridge = make_bridge(redis_client, engage_client, adapter)
    async with running(bridge):
        await bridge.submit(message(thread_key("slow-sign"), "hi"))
        await wait_until(lambda: "post" in adapter.events)
    assert adapter.events.index("sign") < adapter.events.index("status:None")
    assert adapter.events[-2:] == ["status:None", "post"]
    assert adapter.texts() == ["You said: hi"]


@dataclass
class PostClearingSigningAdapter(SigningAdapter):
    def post_clears_status(self, thread: ThreadKey) -> bool:
        return True


async def test_a_slow_sign_lands_before_an_answer_that_clears_the_status_itself(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = PostClearingSigningAdapter(sign_delay=0.3)
    bridge = make_bridge(redis_client, engage_client, adapter)
    async with running(bridge):
        await bridge.submit(message(thread_key("slow-sign-2"), "hi"))
        await wait_until(lambda: "post" in adapter.events)
    assert adapter.events.index("sign") < adapter.events.index("post")
    assert "status:None" not in adapter.events
    assert adapter.texts() == ["You said: hi"]


async def test_a_reply_is_posted_once_per_idempotency_key(
    redis_client: aioredis.Redis, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    reply = Reply(thread=thread_key("once"), text="only once", idempotency_key="a1")
    first = await bridge.outbound.post(reply)
    again = await bridge.outbound.post(reply)
    assert first == again
    assert adapter.texts() == ["only once"]
    assert await bridge.outbound.already_posted(reply.thread, "a1")


async def test_a_failed_send_is_not_repeated_by_the_core_the_adapter_tried_already(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    adapter.fail_next.append(PlatformError("the platform's one retry layer gave up"))
    bridge = make_bridge(redis_client, engage_client, adapter)
    async with running(bridge):
        await bridge.submit(message(thread_key("final"), "hello"))
        await wait_until(lambda: len(adapter.sent) == 1)
    [apology] = adapter.sent
    assert apology.kind is ReplyKind.NOTICE
    assert adapter.fail_next == []
    [letter] = await bridge.dead_letters.list()
    assert "gave up" in letter.error


@dataclass
class LastingSigningAdapter(SigningAdapter):
    sign_seconds: float = 600.0


async def test_a_sign_that_lasts_is_not_repeated_by_a_turn_that_starts_later(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
) -> None:
    adapter = LastingSigningAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    async with running(bridge):
        await bridge.submit(message(thread_key("lasting-sign"), "hi"))
        await wait_until(lambda: "post" in adapter.events)
    assert adapter.events == ["sign", "status:None", "post"]


async def test_a_sign_of_an_adapter_that_does_not_say_how_long_it_lasts_is_shown_again(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
) -> None:
    # However soon the worker's status follows the sign: only the adapter knows it still shows.
    adapter = SigningAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    async with running(bridge):
        await bridge.submit(message(thread_key("short-sign"), "hi"))
        await wait_until(lambda: "post" in adapter.events)
    assert adapter.events == ["sign", "status:Thinking…", "status:None", "post"]


@dataclass
class PartsAdapter(RecordingAdapter):
    """Keeps the posted ledger itself through the store's part records, as Slack does."""

    parts: Parts | None = None
    calls: int = 0

    async def post_once(self, reply: Reply) -> tuple[str, bool]:
        assert self.parts is not None
        self.calls += 1
        claim = await self.parts.claim(reply.thread, reply.idempotency_key, 0)
        if claim.state is PartState.REPLY_POSTED:
            return claim.platform_id, False
        platform_id = await self.send(reply)
        await self.parts.posted(reply.thread, reply.idempotency_key, 0, platform_id, last=True)
        return platform_id, True


async def test_an_adapter_keeping_the_ledger_posts_once_and_the_core_sees_its_record(
    redis_client: aioredis.Redis, engage_client: EngageClient
) -> None:
    adapter = PartsAdapter(parts=Parts(redis_client, "console"))
    bridge = make_bridge(redis_client, engage_client, adapter)
    reply = Reply(thread_key("ledger"), "hello", idempotency_key="agent-msg-1")
    first = await bridge.outbound.post(reply)
    assert await bridge.outbound.post(reply) == first
    assert adapter.calls == 2  # the core asked the adapter, not the ledger, both times
    assert len(adapter.sent) == 1
    assert await bridge.outbound.already_posted(reply.thread, "agent-msg-1")
    assert bridge.metrics.messages_out.labels("console", "agent")._value.get() == 1
