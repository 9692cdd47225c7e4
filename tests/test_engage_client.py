"""The Engage Smarter client against the real emulator over loopback: walkthrough and failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from bridge.config import Settings
from bridge.engage import errors
from bridge.engage.aiohttp_transport import AiohttpTransport
from bridge.engage.client import EngageClient
from bridge.engage.models import MessageRead, UserMessage
from bridge.engage.retry import RetryEvent, RetryPolicy
from bridge.errors import ConfigError
from tests.redis_server import free_port

pytestmark = pytest.mark.timeout(30)

PENSIONS = "pensions-questions-latest"
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
Connect = Callable[..., AbstractAsyncContextManager[EngageClient]]


@pytest.fixture(params=["aiohttp", "httpcore"])
def connect(emulator: Any, request: pytest.FixtureRequest) -> Connect:
    """`async with connect(faults=..., **client_kwargs) as client`: a client for the emulator.

    Every test runs over both transports: the owned client's default (aiohttp) and httpx's own.
    """

    @asynccontextmanager
    async def open_client(
        *, faults: str | None = None, api_key: str | None = None, org_id: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[EngageClient]:  # fmt: skip
        headers = {"X-Emulator-Faults": faults} if faults else {}
        transport = AiohttpTransport() if request.param == "aiohttp" else None
        async with httpx.AsyncClient(headers=headers, timeout=10.0, transport=transport) as http:
            yield EngageClient(
                base_url=emulator.url,
                api_key=api_key or emulator.api_key,
                org_id=org_id or emulator.org_id,
                http=http,
                retry=kwargs.pop("retry", FAST),
                **kwargs,
            )

    return open_client


async def test_seed_walkthrough(connect: Connect) -> None:
    async with connect() as client:
        plain = await client.create_conversation()
        assert (plain.data, plain.source) == ({}, "")
        conversation = await client.create_conversation(
            data={"user_id": "u-1", "ticket_id": "T-9"}, source="test_source"
        )
        assert conversation.data == {"user_id": "u-1", "ticket_id": "T-9"}
        assert conversation.source == "test_source"
        cid = conversation.id

        first = await client.chat(cid, [UserMessage(content="When can I retire?")], agent=PENSIONS)
        assert [m.role for m in first] == ["agent"]
        assert first[0].name == PENSIONS
        assert first[0].conversation_id == cid
        second = await client.chat(cid, [UserMessage(content="And my wife?")], agent=PENSIONS)
        assert "Turn 2" in second[0].content

        history = await client.get_messages(cid)
        assert [m.role for m in history] == ["user", "agent", "user", "agent"]
        assert history[0].content == "When can I retire?"

        for _ in range(9):
            await client.create_conversation()
        page = await client.search_own_conversations(limit=10, offset=0)
        assert len(page) == 10
        assert page[0].created >= page[-1].created

        metadata = await client.get_conversation(cid)
        assert (metadata.data["ticket_id"], metadata.source) == ("T-9", "test_source")
        updated = await client.update_conversation(cid, data={"different": "data"})
        assert updated.data == {"different": "data"}
        assert updated.source == "test_source"


async def test_several_user_messages_in_one_chat_with_their_inputs_returned(
    connect: Connect, emulator: Any
) -> None:
    async with connect() as client:
        cid = (await client.create_conversation(source="slack")).id
        asked = [UserMessage(content="one"), UserMessage(content="two")]
        answer = await client.chat(cid, asked, agent="parrot", return_inputs=True)
    inputs = [m for m in answer if m.role == "user"]
    assert [m.content for m in inputs] == ["one", "two"]
    assert all(m.id for m in inputs)
    agent_messages = [m for m in answer if m.is_agent]
    assert len(agent_messages) == 1
    assert "one" in agent_messages[0].content
    assert "two" in agent_messages[0].content
    stored = [m.content for m in emulator.state.conversations[cid].messages]
    assert stored[:2] == ["one", "two"]


async def test_chat_stream_shows_status_first_then_the_answer(connect: Connect) -> None:
    async with connect() as client:
        cid = (await client.create_conversation()).id
        streamed = [
            m async for m in client.chat_stream(cid, [UserMessage(content="hi")], agent=PENSIONS)
        ]
    assert [m.is_status for m in streamed] == [True, True, False]
    assert streamed[-1].is_agent
    assert all(m.for_end_users for m in streamed)


async def test_a_streamed_answer_with_unicode_line_breaks_arrives_whole(connect: Connect) -> None:
    # The emulator, like the platform's FastAPI, writes JSON without escaping U+2028 or U+0085.
    text = "first line\u2028second\x85third"
    async with connect() as client:
        cid = (await client.create_conversation()).id
        streamed = [
            m async for m in client.chat_stream(cid, [UserMessage(content=text)], agent="parrot")
        ]
    assert [m.content for m in streamed if m.is_agent] == [f"You said: {text}"]


async def test_info_messages_are_streamed_but_marked_not_for_end_users(connect: Connect) -> None:
    async with connect() as client:
        cid = (await client.create_conversation()).id
        streamed = [
            m async for m in client.chat_stream(cid, [UserMessage(content="x")], agent="inspector")
        ]
    assert [m.role for m in streamed] == ["info", "agent"]
    assert [m.for_end_users for m in streamed] == [False, True]


async def test_a_stream_broken_mid_way_raises_chat_outcome_unknown(connect: Connect) -> None:
    got: list[MessageRead] = []
    async with connect(faults="break_stream_after=1") as client:
        cid = (await client.create_conversation()).id
        with pytest.raises(errors.ChatOutcomeUnknown):
            await drain(client.chat_stream(cid, [UserMessage(content="q")], agent=PENSIONS), got)
    assert len(got) == 1
    assert got[0].is_status


async def test_an_agent_error_in_the_stream_raises_engage_stream_error(connect: Connect) -> None:
    async with connect(faults="agent_error=1") as client:
        cid = (await client.create_conversation()).id
        with pytest.raises(errors.EngageStreamError):
            await drain(client.chat_stream(cid, [UserMessage(content="q")], agent="parrot"), [])


async def test_a_lost_chat_response_is_reported_and_reconciled_from_the_history(
    connect: Connect, emulator: Any
) -> None:
    async with connect() as client:
        cid = (await client.create_conversation()).id
        emulator.faults.update({"scope": "chat", "status": 503, "lose_response_next": 1})
        with pytest.raises(errors.ChatOutcomeUnknown) as caught:
            await client.chat(cid, [UserMessage(content="lost?")], agent="parrot")
        assert isinstance(caught.value.__cause__, errors.ServerError)
        history = await client.get_messages(cid)
    # The request did its work: the core finds its message (and here the answer) in the history.
    assert [(m.role, m.content) for m in history] == [
        ("user", "lost?"),
        ("agent", "You said: lost?"),
    ]


async def test_chat_with_an_empty_list_answers_stored_user_messages_without_resending(
    connect: Connect,
) -> None:
    async with connect() as client:
        cid = (await client.create_conversation()).id
        await client.add_messages(cid, [UserMessage(content="stored earlier")])
        answer = await client.chat(cid, [], agent="parrot")
        history = await client.get_messages(cid)
    assert answer[0].content == "You said: stored earlier"
    assert [m.role for m in history] == ["user", "agent"]


async def test_rate_limited_calls_are_retried_after_retry_after(
    connect: Connect, emulator: Any
) -> None:
    seen: list[RetryEvent] = []
    async with connect(on_retry=seen.append) as client:
        emulator.faults.update({"status": 429, "retry_after": 0.01, "fail_next": 2})
        await client.create_conversation(source="retry")
    assert [e.delay for e in seen] == [0.01, 0.01]
    assert [c.source for c in emulator.state.conversations.values()] == ["retry"]


async def test_exhausted_rate_limit_retries_raise_rate_limited_with_retry_after(
    connect: Connect,
) -> None:
    async with connect(faults="status=429,retry_after=0.01") as client:
        with pytest.raises(errors.RateLimited) as caught:
            await client.list_agents()
    assert caught.value.retry_after == 0.01
    assert caught.value.status_code == 429


async def test_reads_are_retried_through_server_errors(connect: Connect, emulator: Any) -> None:
    seen: list[RetryEvent] = []
    async with connect(on_retry=seen.append) as client:
        cid = (await client.create_conversation()).id
        emulator.faults.update({"status": 502, "fail_next": 2})
        conversation = await client.get_conversation(cid)
    assert conversation.id == cid
    assert len(seen) == 2


@pytest.mark.parametrize("code", [500, 503])
async def test_persistent_server_errors_on_reads_raise_server_error(
    connect: Connect, code: int
) -> None:
    async with connect(faults=f"status={code}") as client:
        with pytest.raises(errors.ServerError) as caught:
            await client.search_own_conversations()
    assert caught.value.status_code == code


async def test_a_wrong_api_key_is_unauthorized_and_a_wrong_org_forbidden(connect: Connect) -> None:
    async with connect(api_key="not-a-key") as client:
        with pytest.raises(errors.Unauthorized):
            await client.validate_me()
    async with connect(org_id="someone-elses-org") as client:
        with pytest.raises(errors.Forbidden):
            await client.list_agents()


async def test_unknown_ids_are_not_found_and_bad_input_unprocessable(connect: Connect) -> None:
    async with connect() as client:
        with pytest.raises(errors.NotFound):
            await client.get_conversation("0662787f-f6ab-736f-8000-c2b283e87fba")
        with pytest.raises(errors.Unprocessable):
            await client.search_own_conversations(limit=-1)


async def test_an_unreachable_server_raises_connect_error_after_every_attempt() -> None:
    seen: list[RetryEvent] = []
    url = f"http://127.0.0.1:{free_port()}"
    async with EngageClient(
        base_url=url, api_key="k", org_id="o", retry=FAST, on_retry=seen.append
    ) as client:
        with pytest.raises(errors.EngageConnectError):
            await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert len(seen) == FAST.max_attempts - 1


async def test_from_settings_reads_the_engage_fields(emulator: Any) -> None:
    settings = Settings(
        engage_api_url=emulator.url, engage_api_key=emulator.api_key, engage_org_id=emulator.org_id
    )
    async with EngageClient.from_settings(settings) as client:
        assert await client.validate_me() is True
    with pytest.raises(ConfigError):
        EngageClient.from_settings(Settings(engage_api_key=None, engage_org_id=None))


async def test_from_settings_takes_its_tries_and_backoff_from_the_settings() -> None:
    settings = Settings(
        engage_api_key="k",
        engage_org_id="o",
        agent_attempts=7,
        agent_backoff_seconds=0.5,
        agent_backoff_max_seconds=9.0,
        _env_file=None,
    )
    async with EngageClient.from_settings(settings) as client:
        policy = client._http._retry  # type: ignore[attr-defined]
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (7, 0.5, 9.0)
    assert policy.max_retry_after == 36.0


async def drain(stream: AsyncIterator[MessageRead], into: list[MessageRead]) -> None:
    async for item in stream:
        into.append(item)


async def test_the_connection_limit_follows_the_turns_in_flight_setting() -> None:
    settings = Settings(
        engage_api_key="k", engage_org_id="o", worker_concurrency=3000, _env_file=None
    )
    client = EngageClient.from_settings(settings)
    try:
        transport = client._http_client._transport  # type: ignore[attr-defined]
        assert isinstance(transport, AiohttpTransport)
        assert transport._limits.max_connections >= 3000
    finally:
        await client.aclose()
