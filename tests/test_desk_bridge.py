"""The desk path end to end: signed webhooks into a running bridge, answers back as callbacks."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from bridge.runtime import BridgeRuntime
from tests.fakes.desk import FakeDesk
from tests.fixtures_core import wait_until
from tests.fixtures_desk import desk_event, signed


async def deliver(rt: BridgeRuntime, event: dict[str, Any] | bytes, **kw: Any) -> httpx.Response:
    raw, headers = signed(event, **kw)
    async with httpx.AsyncClient(base_url=rt.http_url or "") as http:
        return await http.post("/desk/webhook", content=raw, headers=headers)


def desk_conversations(emulator: Any) -> list[Any]:
    return [c for c in emulator.state.conversations.values() if c.source == "desk"]


async def drained(redis: aioredis.Redis) -> bool:
    """No thread waits for a worker and no inbox holds a message."""
    if await redis.xlen("bridge:ready"):
        return False
    return not [k async for k in redis.scan_iter(match="*:inbox")]


async def test_ticket_gets_a_desk_conversation_and_a_signed_callback_with_the_answer(
    desk_bridge: BridgeRuntime, emulator: Any, fake_desk: FakeDesk
) -> None:
    event = desk_event("ticket.created", ticket_id="T-1", body="What is a pension?")
    response = await deliver(desk_bridge, event)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "event_id": event["id"]}

    [callback] = await fake_desk.wait_for_callbacks(1)
    [conversation] = desk_conversations(emulator)
    assert conversation.data["ticket_id"] == "T-1"
    assert conversation.data["user_id"] == "cust-1"
    assert conversation.data["thread_key"] == "desk:acme:tickets:T-1"
    assert callback["ticket_id"] == "T-1"
    assert callback["account_id"] == "acme"
    assert callback["kind"] == "agent"
    assert callback["conversation_id"] == conversation.id
    agent_messages = [m for m in conversation.messages if m.role == "agent"]
    assert callback["text"] == agent_messages[-1].content
    assert callback["reply_id"] == callback["_idempotency_key"]
    assert fake_desk.bad_signatures == 0


async def test_replayed_event_is_a_no_op(
    desk_bridge: BridgeRuntime,
    emulator: Any,
    fake_desk: FakeDesk,
    redis_client: aioredis.Redis,
) -> None:
    event = desk_event("ticket.created", ticket_id="T-2")
    assert (await deliver(desk_bridge, event)).status_code == 200
    await fake_desk.wait_for_callbacks(1)

    replay = await deliver(desk_bridge, event)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    await wait_until(lambda: drained(redis_client))
    [conversation] = desk_conversations(emulator)
    assert [m.role for m in conversation.messages].count("user") == 1
    assert len(emulator.state.runs) == 1
    assert len(fake_desk.callbacks) == 1


def _stale() -> dict[str, Any]:
    return {"at": int(time.time()) - 600}


@pytest.mark.parametrize(
    ("name", "make", "status"),
    [
        ("bad signature", lambda: (desk_event(), {"secret": "wrong"}), 401),
        ("stale timestamp", lambda: (desk_event(), _stale()), 401),
        ("malformed json", lambda: (b'{"id": "e", "type":', {}), 422),
        ("missing field", lambda: ({**desk_event(), "ticket": {"id": "T"}}, {}), 422),
        ("2 MB body", lambda: (desk_event(body="x" * 2_000_000), {}), 413),
    ],
)
async def test_rejected_deliveries_store_nothing(
    desk_bridge: BridgeRuntime,
    emulator: Any,
    redis_client: aioredis.Redis,
    fake_desk: FakeDesk,
    name: str,
    make: Any,
    status: int,
) -> None:
    event, options = make()
    response = await deliver(desk_bridge, event, **options)
    assert response.status_code == status, name
    assert isinstance(response.json()["error"], str)
    assert not [k async for k in redis_client.scan_iter(match="{desk:*")]
    assert await redis_client.xlen("bridge:ready") == 0
    assert desk_conversations(emulator) == []
    assert fake_desk.attempts == 0


async def test_invalid_event_names_the_bad_field(desk_bridge: BridgeRuntime) -> None:
    event = desk_event("ticket.comment")
    event["comment"]["author"]["role"] = "robot"
    response = await deliver(desk_bridge, event)
    assert response.status_code == 422
    assert response.json()["field"] == "comment.author.role"


async def test_callback_that_keeps_failing_is_dead_lettered(
    desk_bridge: BridgeRuntime, fake_desk: FakeDesk, redis_client: aioredis.Redis
) -> None:
    fake_desk.reject_status = 400
    assert (await deliver(desk_bridge, desk_event(ticket_id="T-3"))).status_code == 200

    async def dead_lettered() -> bool:
        return bool(await redis_client.hlen("bridge:dead-letters"))

    await wait_until(dead_lettered)
    [raw] = await redis_client.hvals("bridge:dead-letters")
    letter = json.loads(raw)
    assert "desk:acme:tickets:T-3" in json.dumps(letter)
    assert fake_desk.callbacks == []
