"""Outbound: posting once per idempotency key, and the sign shown when a message is accepted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bridge.admission import CountIngress, work_after_acks_done
from bridge.core import Bridge
from bridge.engage.client import EngageClient
from bridge.errors import PlatformError
from bridge.models import InboundMessage, Reply, ReplyKind, SubmitResult, ThreadKey
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
        await answered(bridge, adapter)
    assert adapter.events.index("sign") < adapter.events.index("status:None")
    assert adapter.events[-2:] == ["status:None", "post"]
    assert adapter.texts() == ["You said: hi"]


async def answered(bridge: Bridge, adapter: SigningAdapter) -> None:
    """Posted and committed: no cancelled turn clears its status after the post."""
    await wait_until(lambda: "post" in adapter.events)

    async def committed() -> bool:
        return await bridge.queue_depth() == 0

    await wait_until(committed)


def acking_app(bridge: Bridge, events: list[str], fail: bool = False) -> CountIngress:
    """An HTTP ingress route as the runtime serves it: it stores the message, then acks."""

    async def events_route(request: Request) -> PlainTextResponse:
        name = (await request.body()).decode()
        await bridge.submit(message(thread_key(name), "hi", message_id=name))
        events.append(f"submitted in {id(asyncio.current_task())}")
        if fail:
            raise RuntimeError("the route failed after storing the message")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/events", events_route, methods=["POST"])])
    accept = bridge.inbox.accept

    async def noting_accept(message: InboundMessage) -> tuple[SubmitResult, bool]:
        events.append(f"in flight {bridge.admission.busy}")
        return await accept(message)

    bridge.inbox.accept = noting_accept  # type: ignore[method-assign]

    async def noting_acks(scope: Any, receive: Any, send: Any) -> None:
        async def noting_send(event: Any) -> None:
            await send(event)
            if event["type"] == "http.response.body":
                events.append("acked")

        await app(scope, receive, noting_send)

    return CountIngress(noting_acks, bridge.admission)


@dataclass
class TaskNotingAdapter(SigningAdapter):
    async def show_accepted(self, thread: ThreadKey) -> None:
        self.events.append(f"sign in {id(asyncio.current_task())}")
        self.signs.append(thread)


async def test_an_http_request_shows_its_sign_right_after_its_ack_in_its_own_task(
    redis_client: aioredis.Redis, engage_client: EngageClient
) -> None:
    adapter = TaskNotingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    transport = httpx.ASGITransport(app=acking_app(bridge, adapter.events))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/events", content=b"acked-sign")).status_code == 200
        assert (await client.post("/events", content=b"acked-sign")).status_code == 200
    # The request counts once as ingress, not again for the submit inside it.
    assert adapter.events.count("in flight 1") == 2
    adapter.events[:] = [e for e in adapter.events if e != "in flight 1"]
    submitted, acked, signed, duplicate, acked_again = adapter.events
    # The request's own task shows the sign once its ack is out: no task of its own.
    assert (acked, signed) == ("acked", submitted.replace("submitted", "sign"))
    assert adapter.signs == [thread_key("acked-sign")]
    # A duplicate delivery is acked and shows nothing.
    assert duplicate.startswith("submitted in ")
    assert acked_again == "acked"
    assert bridge.admission.busy == 0


async def test_a_request_that_fails_after_storing_its_message_still_shows_the_sign(
    redis_client: aioredis.Redis, engage_client: EngageClient
) -> None:
    adapter = SigningAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    transport = httpx.ASGITransport(app=acking_app(bridge, adapter.events, fail=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError):
            await client.post("/events", content=b"failed-route")
    await wait_until(lambda: adapter.signs == [thread_key("failed-route")])


@dataclass
class BrokenSigningAdapter(SigningAdapter):
    async def show_accepted(self, thread: ThreadKey) -> None:
        raise RuntimeError("not a platform error: a bug")


async def test_a_sign_that_breaks_after_a_failed_request_is_logged_at_once(
    redis_client: aioredis.Redis, engage_client: EngageClient, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = BrokenSigningAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    transport = httpx.ASGITransport(app=acking_app(bridge, adapter.events, fail=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError):
            await client.post("/events", content=b"broken-sign")
    await asyncio.wait_for(work_after_acks_done(10), timeout=20)
    failures = [r for r in caplog.records if r.getMessage() == "work after an ack failed"]
    assert [(r.name, r.exc_info is not None) for r in failures] == [("bridge.admission", True)]


@dataclass
class HeldSigningAdapter(SigningAdapter):
    """Holds the sign of `held` until `release` is set."""

    held: ThreadKey | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[ThreadKey] = field(default_factory=list)

    async def show_accepted(self, thread: ThreadKey) -> None:
        self.started.append(thread)
        if thread == self.held:
            await self.release.wait()
        self.signs.append(thread)


async def test_signs_queued_behind_an_ack_still_show_when_the_request_is_cancelled_between_them(
    redis_client: aioredis.Redis, engage_client: EngageClient
) -> None:
    first, second = thread_key("cancelled-1"), thread_key("cancelled-2")
    adapter = HeldSigningAdapter(held=first)
    bridge = make_bridge(redis_client, engage_client, adapter)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for thread in (first, second):  # two signs queued behind one ack
            assert (await bridge.submit(message(thread, "hi", message_id=thread.thread))).accepted
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(event: Any) -> None:
        return None

    scope = {"type": "http", "method": "POST", "path": "/events", "headers": []}
    request = asyncio.create_task(CountIngress(app, bridge.admission)(scope, receive, send))
    await wait_until(lambda: adapter.started == [first])
    request.cancel()  # as a server's graceful shutdown does once it gives up waiting
    with pytest.raises(asyncio.CancelledError):
        await request
    # The sign not yet run when the task was cancelled is still shown (the runtime waits for
    # such signs at shutdown before it closes the adapters)...
    await asyncio.wait_for(work_after_acks_done(10), timeout=20)
    assert adapter.signs == [second]
    # ...and neither thread is left waiting for a sign that never resolves: a later message
    # in each shows its own.
    for n, thread in enumerate((first, second)):
        await bridge.submit(message(thread, "again", message_id=f"again-{n}"))
    adapter.release.set()
    await wait_until(lambda: len(adapter.signs) == 3)
    assert (adapter.signs.count(first), adapter.signs.count(second)) == (1, 2)
    assert adapter.started.count(first) == 2


async def test_a_slow_sign_after_an_ack_lands_before_the_status_is_cleared_and_the_answer(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = SigningAdapter(sign_delay=0.3)
    bridge = make_bridge(redis_client, engage_client, adapter)
    transport = httpx.ASGITransport(app=acking_app(bridge, adapter.events))
    async with running(bridge), httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        request = asyncio.create_task(c.post("/events", content=b"slow-acked-sign"))
        await answered(bridge, adapter)
        assert (await request).status_code == 200
    assert adapter.events.index("acked") < adapter.events.index("sign")
    assert adapter.events.index("sign") < adapter.events.index("status:None")
    assert adapter.events[-2:] == ["status:None", "post"]


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
        await answered(bridge, adapter)
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
        await answered(bridge, adapter)
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
        await answered(bridge, adapter)
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
