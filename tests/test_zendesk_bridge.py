"""Zendesk end to end: the fake's signed ticket events into a running bridge, answers back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from adapters.zendesk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bridge.models import ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.zendesk import ACCOUNT_ID, FakeZendesk
from tests.fixtures_core import wait_until
from tests.fixtures_helpdesk import drained

CUSTOMER, AGENT = 501, 601


def conversations(emulator: Any) -> list[Any]:
    return [c for c in emulator.state.conversations.values() if c.source == "zendesk"]


def user_texts(conversation: Any) -> list[str]:
    return [m.content for m in conversation.messages if m.role == "user"]


async def answers(zendesk: FakeZendesk, ticket: int, count: int) -> list[str]:
    async def enough() -> bool:
        return len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) >= count

    await wait_until(enough)
    return zendesk.public_comments_by(ticket, zendesk.bot_user_id)


async def status(rt: BridgeRuntime, ticket: int) -> str | None:
    key = ThreadKey("zendesk", str(ACCOUNT_ID), "tickets", str(ticket))
    return await rt.bridge.threads.status(key)


async def settled(rt: BridgeRuntime, redis: aioredis.Redis, zendesk: FakeZendesk) -> None:
    """Every event (the bot's own echoes too) delivered and every thread's work done."""
    await zendesk.idle()
    await wait_until(lambda: drained(redis))
    await zendesk.idle()


@pytest.fixture(autouse=True)
def people(zendesk: FakeZendesk) -> None:
    zendesk.add_user(CUSTOMER, "Ann Customer", staff=False)
    zendesk.add_user(AGENT, "Bob Agent", staff=True)


async def test_new_ticket_is_answered_once_as_a_public_comment_by_the_bot(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, emulator: Any, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "How do I change my contributions?")
    assert await answers(zendesk, ticket, 1) == ["You said: How do I change my contributions?"]
    await settled(zendesk_bridge, redis_client, zendesk)

    # ticket.created and its comment_added twin are taken; the bot's own comment echoed back
    # is ignored (it may come back before the twin's answer: codes by event, not by order)
    assert sorted((_delivered(event), code) for event, code in zendesk.deliveries) == [
        (f"comment_added by {CUSTOMER}", 200),
        (f"comment_added by {zendesk.bot_user_id}", 202),
        ("created", 200),
    ]
    assert len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) == 1
    [conversation] = conversations(emulator)
    assert conversation.data["ticket_id"] == str(ticket)
    assert conversation.data["user_id"] == str(CUSTOMER)
    assert conversation.data["thread_key"] == f"zendesk:{ACCOUNT_ID}:tickets:{ticket}"
    assert user_texts(conversation) == ["How do I change my contributions?"]
    assert len(emulator.state.runs) == 1


async def test_customer_follow_up_continues_the_same_conversation(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, emulator: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "First question")
    await answers(zendesk, ticket, 1)
    await zendesk.comment(ticket, CUSTOMER, "Second question")

    assert (await answers(zendesk, ticket, 2))[-1] == "You said: Second question"
    [conversation] = conversations(emulator)
    assert user_texts(conversation) == ["First question", "Second question"]


async def test_agent_reply_hands_over_and_the_bot_stays_silent(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, emulator: Any, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Can a person help?")
    await answers(zendesk, ticket, 1)
    await zendesk.comment(ticket, AGENT, "Hi Ann, Bob here.")
    await wait_until(lambda: _is(zendesk_bridge, ticket, "human"))

    await zendesk.comment(ticket, CUSTOMER, "Thanks Bob")
    await settled(zendesk_bridge, redis_client, zendesk)
    assert len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) == 1
    [conversation] = conversations(emulator)
    assert user_texts(conversation)[-1] == "Thanks Bob"  # recorded, not answered
    assert conversation.data["status"] == "human"
    [note] = zendesk.notes_by(ticket, zendesk.bot_user_id)
    assert note.startswith("Handing this thread over")


async def test_assignment_to_an_agent_hands_over(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Question")
    await answers(zendesk, ticket, 1)
    await zendesk.assign(ticket, AGENT)
    await wait_until(lambda: _is(zendesk_bridge, ticket, "human"))
    await zendesk.comment(ticket, CUSTOMER, "Anyone?")
    await settled(zendesk_bridge, redis_client, zendesk)
    assert len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) == 1
    assert zendesk.notes_by(ticket, zendesk.bot_user_id) == []  # Zendesk shows the change


async def test_solving_ends_it_and_the_customer_reopening_brings_the_bot_back(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, emulator: Any, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Question")
    await answers(zendesk, ticket, 1)
    await zendesk.set_status(ticket, "solved", AGENT)
    await wait_until(lambda: _is(zendesk_bridge, ticket, "resolved"))
    [conversation] = conversations(emulator)
    assert conversation.data["status"] == "resolved"

    await zendesk.comment(ticket, CUSTOMER, "One more thing")
    assert (await answers(zendesk, ticket, 2))[-1] == "You said: One more thing"
    assert await status(zendesk_bridge, ticket) == "bot"
    await settled(zendesk_bridge, redis_client, zendesk)
    assert zendesk.tickets[ticket].status == "open"


async def test_duplicate_and_retried_deliveries_give_one_answer(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, emulator: Any, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Once only")
    await answers(zendesk, ticket, 1)
    [twin] = [e for e, _ in zendesk.deliveries if _delivered(e) == f"comment_added by {CUSTOMER}"]
    replay = await zendesk.deliver(twin)
    assert replay.json()["status"] == "duplicate"
    await settled(zendesk_bridge, redis_client, zendesk)
    assert len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) == 1
    assert len(emulator.state.runs) == 1


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("wrong secret", {"secret": "not-the-secret"}),
        ("stale timestamp", {"timestamp": "2021-03-25T05:09:27Z"}),
    ],
)
async def test_badly_signed_event_is_refused_and_nothing_stored(
    zendesk_bridge: BridgeRuntime,
    zendesk: FakeZendesk,
    emulator: Any,
    redis_client: aioredis.Redis,
    name: str,
    options: dict[str, str],
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Hello")
    await settled(zendesk_bridge, redis_client, zendesk)
    await redis_client.flushall()
    event = zendesk.comment_event(
        zendesk.tickets[ticket],
        {"id": 77, "author_id": CUSTOMER, "body": "forged", "public": True},
        "seq",
    )
    response = await zendesk.deliver(event, **options)
    assert response.status_code == 401, name
    assert not [k async for k in redis_client.scan_iter(match="{zendesk:*")]
    assert await redis_client.xlen("bridge:ready") == 0


@pytest.mark.parametrize("failure", [429, 503])
async def test_api_failure_is_retried_and_the_answer_posted_once(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, failure: int, redis_client: Any
) -> None:
    zendesk.fail_status, zendesk.fail_next = failure, 2
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Busy desk?")
    assert await answers(zendesk, ticket, 1) == ["You said: Busy desk?"]
    await settled(zendesk_bridge, redis_client, zendesk)
    codes = [code for method, _, code in zendesk.api_calls if method == "PUT"]
    assert codes == [failure, failure, 200]
    assert len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) == 1


async def _is(rt: BridgeRuntime, ticket: int, expected: str) -> bool:
    return await status(rt, ticket) == expected


async def test_customer_may_not_switch_the_agent_and_is_told_why(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, emulator: Any, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Question")
    await answers(zendesk, ticket, 1)
    await zendesk.comment(ticket, CUSTOMER, "agent parrot")
    refusal = (await answers(zendesk, ticket, 2))[-1]
    assert refusal.startswith("Only staff")
    await settled(zendesk_bridge, redis_client, zendesk)
    assert len(emulator.state.runs) == 1  # the command was neither answered nor obeyed


@pytest.mark.parametrize(
    ("name", "body", "content_type", "expected"),
    [
        ("not JSON", b"ticket=1", "application/x-www-form-urlencoded", 415),
        ("malformed JSON", b'{"type": "zen:event-type:ticket.created",', "application/json", 422),
        (
            "missing detail",
            b'{"id": "e", "type": "t", "account_id": 1, "time": "2025-01-01T00:00:00Z"}',
            "application/json",
            422,
        ),
        ("2 MB body", b"{" + b" " * 2_000_000 + b"}", "application/json", 413),
    ],
)
async def test_malformed_signed_deliveries_get_a_clear_4xx_and_nothing_stored(
    zendesk_bridge: BridgeRuntime,
    zendesk: FakeZendesk,
    redis_client: aioredis.Redis,
    name: str,
    body: bytes,
    content_type: str,
    expected: int,
) -> None:
    headers = {**_signed_for(zendesk, body), "Content-Type": content_type}
    async with httpx.AsyncClient(base_url=zendesk_bridge.http_url or "") as http:
        response = await http.post("/zendesk/webhook", content=body, headers=headers)
    assert response.status_code == expected, name
    assert isinstance(response.json()["error"], str)
    assert await redis_client.xlen("bridge:ready") == 0


def _signed_for(zendesk: FakeZendesk, body: bytes) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(zendesk.webhook_secret, stamp, body)}


async def test_comment_applied_but_answered_500_is_not_posted_twice(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, redis_client: Any
) -> None:
    zendesk.apply_then_fail_next = 1
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Did it post?")
    assert await answers(zendesk, ticket, 1) == ["You said: Did it post?"]
    await settled(zendesk_bridge, redis_client, zendesk)
    assert [(method, code) for method, _, code in zendesk.api_calls] == [
        ("PUT", 500),
        ("GET", 200),  # the ticket's newest comments: the answer is there
    ]
    assert len(zendesk.public_comments_by(ticket, zendesk.bot_user_id)) == 1


async def test_agent_gives_the_ticket_back_with_an_internal_note(
    zendesk_bridge: BridgeRuntime, zendesk: FakeZendesk, redis_client: Any
) -> None:
    ticket = await zendesk.create_ticket(CUSTOMER, "Pension", "Question")
    await answers(zendesk, ticket, 1)
    await zendesk.comment(ticket, AGENT, "I'll check your account.")
    await wait_until(lambda: _is(zendesk_bridge, ticket, "human"))
    await zendesk.comment(ticket, AGENT, "resume", public=False)
    await wait_until(lambda: _is(zendesk_bridge, ticket, "bot"))

    await zendesk.comment(ticket, CUSTOMER, "Thanks, and my balance?")
    assert (await answers(zendesk, ticket, 2))[-1].endswith("Thanks, and my balance?")
    assert zendesk.notes_by(ticket, zendesk.bot_user_id)[-1] == (
        "The assistant is back in this thread."
    )


def _delivered(event: dict[str, Any]) -> str:
    """What a delivered event was: its kind and, for a comment, who wrote it."""
    kind = event["type"].rsplit(".", 1)[-1]
    comment = event["event"].get("comment")
    if comment is None:
        return kind
    return f"{kind} by {comment['author']['id']}"
