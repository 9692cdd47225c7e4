"""Chatwoot end to end: the fake's Agent Bot deliveries into a running bridge, answers back."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.chatwoot import ChatwootAdapter
from bridge.errors import PermanentPlatformError
from bridge.models import ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.chatwoot import ACCOUNT, FakeChatwoot
from tests.fixtures_core import wait_until
from tests.fixtures_helpdesk import FAST_RETRY, chatwoot_config, drained

CONTACT, AGENT = 55, 66


def conversations(emulator: Any) -> list[Any]:
    return [c for c in emulator.state.conversations.values() if c.source == "chatwoot"]


def user_texts(conversation: Any) -> list[str]:
    return [m.content for m in conversation.messages if m.role == "user"]


async def answers(chatwoot: FakeChatwoot, conversation: int, count: int) -> list[str]:
    await wait_until(lambda: len(chatwoot.bot_messages(conversation)) >= count)
    return chatwoot.bot_messages(conversation)


async def status(rt: BridgeRuntime, conversation: int) -> str | None:
    key = ThreadKey("chatwoot", str(ACCOUNT["id"]), "conversations", str(conversation))
    return await rt.bridge.threads.status(key)


async def is_status(rt: BridgeRuntime, conversation: int, expected: str) -> bool:
    return await status(rt, conversation) == expected


async def settled(chatwoot: FakeChatwoot, redis: aioredis.Redis) -> None:
    """Every delivery (the bot's own echoes too) made and every thread's work done."""
    await chatwoot.idle()
    await wait_until(lambda: drained(redis))
    await chatwoot.idle()


@pytest.fixture(autouse=True)
def people(chatwoot: FakeChatwoot) -> None:
    chatwoot.agents[AGENT] = "Bob Agent"


async def test_new_conversation_is_answered_once_by_the_bot(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "How do I change my contributions?")
    assert await answers(chatwoot, conv, 1) == ["You said: How do I change my contributions?"]
    await settled(chatwoot, redis_client)

    # the contact's message, then the bot's own message echoed back (ignored)
    assert [code for _, _, code in chatwoot.deliveries] == [200, 202]
    [conversation] = conversations(emulator)
    assert conversation.data["ticket_id"] == str(conv)
    assert conversation.data["user_id"] == str(CONTACT)
    assert conversation.data["thread_key"] == f"chatwoot:{ACCOUNT['id']}:conversations:{conv}"
    assert len(emulator.state.runs) == 1
    assert chatwoot.conversations[conv].status == "pending"


async def test_contact_follow_up_continues_the_same_conversation(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "First question")
    await answers(chatwoot, conv, 1)
    await chatwoot.contact_writes(CONTACT, "Second question", conv)
    assert (await answers(chatwoot, conv, 2))[-1] == "You said: Second question"
    [conversation] = conversations(emulator)
    assert user_texts(conversation) == ["First question", "Second question"]


async def test_agent_reply_hands_over_opens_the_conversation_and_the_bot_stays_silent(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Can a person help?")
    await answers(chatwoot, conv, 1)
    await chatwoot.agent_writes(conv, AGENT, "Hi, Bob here.")
    await wait_until(lambda: is_status(chatwoot_bridge, conv, "human"))
    await wait_until(lambda: chatwoot.conversations[conv].status == "open")

    await chatwoot.contact_writes(CONTACT, "Thanks Bob", conv)
    await settled(chatwoot, redis_client)
    assert len(chatwoot.bot_messages(conv)) == 1
    [note] = chatwoot.bot_messages(conv, private=True)
    assert note.startswith("Handing this thread over")
    [conversation] = conversations(emulator)
    assert user_texts(conversation)[-1] == "Thanks Bob"  # recorded, not answered
    assert conversation.data["status"] == "human"


async def test_back_to_pending_in_chatwoot_brings_the_bot_back(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Question")
    await answers(chatwoot, conv, 1)
    await chatwoot.agent_writes(conv, AGENT, "Let me check.")
    await wait_until(lambda: chatwoot.conversations[conv].status == "open")
    await settled(chatwoot, redis_client)

    await chatwoot.set_status(conv, "pending")  # agent bots are not told about this
    await chatwoot.contact_writes(CONTACT, "Still there?", conv)
    # the parrot repeats every user message since its last answer (Bob's was recorded)
    assert (await answers(chatwoot, conv, 2))[-1].endswith("Still there?")
    assert await status(chatwoot_bridge, conv) == "bot"


async def test_resolving_ends_it_and_the_contact_writing_again_brings_the_bot_back(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Question")
    await answers(chatwoot, conv, 1)
    await chatwoot.set_status(conv, "resolved", AGENT)
    await wait_until(lambda: is_status(chatwoot_bridge, conv, "resolved"))
    [conversation] = conversations(emulator)
    assert conversation.data["status"] == "resolved"

    await chatwoot.contact_writes(CONTACT, "One more thing", conv)
    assert (await answers(chatwoot, conv, 2))[-1] == "You said: One more thing"
    await settled(chatwoot, redis_client)
    assert await status(chatwoot_bridge, conv) == "bot"
    assert chatwoot.conversations[conv].status == "pending"
    assert chatwoot.bot_messages(conv, private=True) == [
        "This thread is open again; the assistant will answer."
    ]


async def test_private_note_by_an_agent_is_not_a_hand_off(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Question")
    await answers(chatwoot, conv, 1)
    await chatwoot.agent_writes(conv, AGENT, "internal: VIP customer", private=True)
    await chatwoot.contact_writes(CONTACT, "Next question", conv)
    assert (await answers(chatwoot, conv, 2))[-1] == "You said: Next question"
    [conversation] = conversations(emulator)
    assert "internal: VIP customer" not in user_texts(conversation)


async def test_duplicate_and_retried_deliveries_give_one_answer(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Once only")
    await answers(chatwoot, conv, 1)
    conversation = chatwoot.conversations[conv]
    body = json.dumps(
        {
            **chatwoot.message_data(conversation, conversation.messages[0]),
            "event": "message_created",
        }
    ).encode()
    _, first_delivery, _ = chatwoot.deliveries[0]
    assert await chatwoot.post(body, first_delivery) == 200  # a retry: same delivery id
    assert await chatwoot.post(body, "another-delivery") == 200  # a duplicate job
    await settled(chatwoot, redis_client)
    assert len(chatwoot.bot_messages(conv)) == 1
    assert len(emulator.state.runs) == 1


@pytest.mark.parametrize(
    ("name", "chatwoot_overrides", "fake", "expected"),
    [
        ("wrong URL token", {}, {"outgoing_url": "/chatwoot/webhook/not-the-token"}, 403),
        ("wrong signature", {}, {"bot_secret": "not-the-secret"}, 401),
        ("stale signature", {}, {"clock_offset": -600}, 401),
        ("source outside the allowlist", {"allowed_sources": ["10.0.0.0/8"]}, {}, 403),
    ],
)
async def test_unauthenticated_delivery_is_refused_and_nothing_stored(
    chatwoot_bridge: BridgeRuntime,
    chatwoot: FakeChatwoot,
    emulator: Any,
    redis_client: aioredis.Redis,
    name: str,
    chatwoot_overrides: dict[str, Any],
    fake: dict[str, Any],
    expected: int,
) -> None:
    for attribute, value in fake.items():
        if attribute == "outgoing_url":
            value = chatwoot_bridge.http_url + value
        setattr(chatwoot, attribute, value)
    conv = await chatwoot.contact_writes(CONTACT, "Hello")
    await chatwoot.idle()
    assert [code for _, _, code in chatwoot.deliveries] == [expected], name
    assert not [k async for k in redis_client.scan_iter(match="{chatwoot:*")]
    assert await redis_client.xlen("bridge:ready") == 0
    assert conversations(emulator) == []
    # Chatwoot's own reaction to a bot that refuses: the humans get the conversation.
    assert chatwoot.conversations[conv].status == "open"


@pytest.mark.parametrize("failure", [429, 500])
async def test_api_failure_is_retried_and_the_answer_posted_once(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, failure: int, redis_client: Any
) -> None:
    chatwoot.fail_status, chatwoot.fail_next = failure, 2
    conv = await chatwoot.contact_writes(CONTACT, "Busy desk?")
    assert await answers(chatwoot, conv, 1) == ["You said: Busy desk?"]
    await settled(chatwoot, redis_client)
    codes = [code for _, path, code in chatwoot.api_calls if path.endswith("/messages")]
    assert codes == [failure, failure, 200]
    assert len(chatwoot.bot_messages(conv)) == 1


async def test_open_conversation_the_bot_never_saw_stays_with_the_humans(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, emulator: Any, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Hello")
    await answers(chatwoot, conv, 1)
    await settled(chatwoot, redis_client)
    other = await chatwoot.contact_writes(CONTACT + 1, "Hi")
    await wait_until(lambda: len(chatwoot.bot_messages(other)) == 1)
    chatwoot.conversations[other].status = "open"
    await redis_client.flushall()  # the bridge never saw it
    await chatwoot.contact_writes(CONTACT + 1, "Anyone?", other)
    await settled(chatwoot, redis_client)
    assert len(chatwoot.bot_messages(other)) == 1
    assert chatwoot.deliveries[-1][2] == 202


async def test_contact_may_not_give_the_conversation_back_to_the_bot(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Question")
    await answers(chatwoot, conv, 1)
    await chatwoot.agent_writes(conv, AGENT, "Bob here.")
    await wait_until(lambda: chatwoot.conversations[conv].status == "open")
    await chatwoot.contact_writes(CONTACT, "resume", conv)
    refusal = (await answers(chatwoot, conv, 2))[-1]
    assert refusal.startswith("Only staff")
    await settled(chatwoot, redis_client)
    assert await status(chatwoot_bridge, conv) == "human"


async def test_start_checks_the_bot_token_when_the_account_is_known(chatwoot: FakeChatwoot) -> None:
    good = ChatwootAdapter(chatwoot_config(chatwoot, account_id="1"), retry=FAST_RETRY)
    bad = ChatwootAdapter(
        chatwoot_config(chatwoot, account_id="1", bot_token="not-the-bot-token"), retry=FAST_RETRY
    )
    try:
        await good.start()
        with pytest.raises(PermanentPlatformError, match="CHATWOOT_BOT_TOKEN"):
            await bad.start()
    finally:
        await good.aclose()
        await bad.aclose()


async def test_message_created_but_answered_500_is_not_posted_twice(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, redis_client: Any
) -> None:
    chatwoot.apply_then_fail_next = 1
    conv = await chatwoot.contact_writes(CONTACT, "Did it post?")
    assert await answers(chatwoot, conv, 1) == ["You said: Did it post?"]
    await settled(chatwoot, redis_client)
    assert [(method, code) for method, _, code in chatwoot.api_calls] == [
        ("POST", 500),
        ("GET", 200),  # the conversation's newest message: the answer is there
    ]
    assert len(chatwoot.bot_messages(conv)) == 1


async def test_agent_gives_the_conversation_back_with_a_private_note(
    chatwoot_bridge: BridgeRuntime, chatwoot: FakeChatwoot, redis_client: Any
) -> None:
    conv = await chatwoot.contact_writes(CONTACT, "Question")
    await answers(chatwoot, conv, 1)
    await chatwoot.agent_writes(conv, AGENT, "Bob here.")
    await wait_until(lambda: chatwoot.conversations[conv].status == "open")
    await chatwoot.agent_writes(conv, AGENT, "resume", private=True)
    await wait_until(lambda: chatwoot.conversations[conv].status == "pending")
    assert await status(chatwoot_bridge, conv) == "bot"

    await chatwoot.contact_writes(CONTACT, "And my balance?", conv)
    assert (await answers(chatwoot, conv, 2))[-1].endswith("And my balance?")
