"""One retry layer per remote, end to end: the configured number of tries against the emulator's
injected faults, never a repeated chat unless provably unsent, the apology after the last try."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.config import Settings
from bridge.core import Bridge
from bridge.engage.client import EngageClient
from bridge.models import ReplyKind
from tests.fixtures_core import (
    NewCore,
    RecordingAdapter,
    core_settings,
    message,
    running,
    thread_key,
    until_sent,
    wait_until,
)

TRIES = 3
MANY = 100


@pytest.fixture
def settings() -> Settings:
    return core_settings(agent_attempts=TRIES)


@pytest.fixture
async def engage(emulator: Any, settings: Settings) -> AsyncIterator[EngageClient]:
    """Built as the runtime builds it: its tries and backoff come from the settings."""
    client = EngageClient.from_settings(
        settings, base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id
    )
    yield client
    await client.aclose()


def user_texts(emulator: Any, cid: str) -> list[str]:
    return [m.content for m in emulator.state.messages(cid) if m.role == "user"]


async def answered(bridge: Bridge, adapter: RecordingAdapter, text: str) -> str:
    """A first exchange, so the thread has a conversation; returns its id."""
    thread = thread_key("layers")
    await bridge.submit(message(thread, text))
    await wait_until(lambda: len(adapter.sent) == 1)
    record = await bridge.threads.get(thread)
    assert record is not None
    return record.conversation_id


async def test_a_5xx_on_an_idempotent_read_is_tried_exactly_the_configured_times_then_apology(
    emulator: Any, engage: EngageClient, settings: Settings, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings, engage=engage)
    async with running(bridge):
        cid = await answered(bridge, adapter, "first question")
        # A handoff reads the conversation (GET, idempotent) before it updates it.
        emulator.faults.update({"scope": f"/v1/conversations/{cid}", "status": 503})
        emulator.faults.fail_next = MANY
        await bridge.submit(message(thread_key("layers"), "handoff", command="handoff"))
        await wait_until(lambda: len(adapter.sent) == 2)
    assert MANY - emulator.faults.fail_next == TRIES  # not TRIES x TRIES
    apology = adapter.sent[1]
    assert apology.kind is ReplyKind.NOTICE
    assert apology.text.startswith("Sorry")
    [letter] = await bridge.dead_letters.list()
    assert "503" in letter.error


async def test_a_chat_refused_with_5xx_is_sent_the_configured_times_then_apology(
    emulator: Any, engage: EngageClient, settings: Settings, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings, engage=engage)
    emulator.faults.update({"scope": "chat", "status": 503})
    emulator.faults.fail_next = MANY
    await bridge.submit(message(thread_key("down"), "anyone there?"))
    await until_sent(bridge, adapter)
    # Each round after the first read the history first: the messages were not stored.
    assert MANY - emulator.faults.fail_next == TRIES
    assert adapter.sent[0].kind is ReplyKind.NOTICE
    assert not emulator.state.runs


async def test_a_chat_whose_response_was_lost_is_never_sent_again(
    emulator: Any, engage: EngageClient, settings: Settings, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings, engage=engage)
    # Processed in full, then answered 502: to the client a 5xx like any other.
    emulator.faults.update({"scope": "chat", "status": 502})
    emulator.faults.lose_response_next = 1
    await bridge.submit(message(thread_key("lost"), "only once"))
    await until_sent(bridge, adapter)
    [reply] = adapter.sent
    assert reply.text == "You said: only once"
    assert reply.conversation_id is not None
    assert len(emulator.state.runs) == 1
    assert user_texts(emulator, reply.conversation_id) == ["only once"]


async def test_a_chat_refused_with_429_is_repeated_by_the_client_alone(
    emulator: Any, engage: EngageClient, settings: Settings, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings, engage=engage)
    emulator.faults.update({"scope": "chat", "status": 429, "retry_after": 0.01})
    emulator.faults.fail_next = TRIES - 1
    await bridge.submit(message(thread_key("busy"), "wait your turn"))
    await until_sent(bridge, adapter)
    assert emulator.faults.fail_next == 0
    [reply] = adapter.sent
    assert reply.text == "You said: wait your turn"
    assert len(emulator.state.runs) == 1
    assert bridge.metrics.agent_retries._value.get() == 0  # the core repeated nothing


async def test_a_chat_refused_with_429_more_often_than_the_tries_is_apologised_for(
    emulator: Any, engage: EngageClient, settings: Settings, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings, engage=engage)
    emulator.faults.update({"scope": "chat", "status": 429, "retry_after": 0.01})
    emulator.faults.fail_next = MANY
    await bridge.submit(message(thread_key("busier"), "still there?"))
    await until_sent(bridge, adapter)
    assert MANY - emulator.faults.fail_next == TRIES
    assert adapter.sent[0].kind is ReplyKind.NOTICE


async def test_a_429_asking_longer_than_four_backoff_caps_is_apologised_for_at_once(
    emulator: Any, engage: EngageClient, settings: Settings, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings, engage=engage)
    longest = settings.agent_backoff_max_seconds * 4
    emulator.faults.update({"scope": "chat", "status": 429, "retry_after": longest * 10})
    emulator.faults.fail_next = MANY
    await bridge.submit(message(thread_key("later"), "come back later?"))
    await until_sent(bridge, adapter)
    assert MANY - emulator.faults.fail_next == 1
    assert adapter.sent[0].kind is ReplyKind.NOTICE
    [letter] = await bridge.dead_letters.list()
    assert "429" in letter.error
