"""Retries, error mapping and request shape of the Engage Smarter client, over MockTransport."""

from __future__ import annotations

import json

import httpx
import pytest

from bridge.engage import errors
from bridge.engage.models import UserMessage
from bridge.engage.retry import Failure, RetryPolicy
from tests.engage_mock import Recorder, conversation, message, mock_client

pytestmark = pytest.mark.timeout(10)


def ok(payload: object) -> httpx.Response:
    return httpx.Response(200, json=payload)


def status(code: int, detail: object = "nope", **headers: str) -> httpx.Response:
    return httpx.Response(code, json={"detail": detail}, headers=headers)


async def test_get_is_retried_after_server_errors_and_transport_failures() -> None:
    rec = Recorder()
    responses: list[httpx.Response | Exception] = [
        status(503),
        httpx.ReadTimeout("slow"),
        ok(conversation()),
    ]
    async with mock_client(responses, rec) as client:
        found = await client.get_conversation("c1")
    assert found.id == "c1"
    assert len(rec.requests) == 3
    assert [event.failure for event in rec.retries] == [Failure.SERVER_ERROR, Failure.NO_RESPONSE]
    assert len(rec.sleeps) == 2
    assert all(0 < delay <= 0.05 for delay in rec.sleeps)


async def test_backoff_grows_exponentially_within_its_jitter_band() -> None:
    rec = Recorder()
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=1.0)
    async with mock_client([status(500)] * 4, rec, policy=policy) as client:
        with pytest.raises(errors.ServerError):
            await client.get_messages("c1")
    assert len(rec.requests) == 4
    for attempt, delay in enumerate(rec.sleeps, start=1):
        ceiling = 0.01 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


async def test_exhausted_transport_retries_raise_a_timeout_error_from_the_httpx_one() -> None:
    rec = Recorder()
    async with mock_client([httpx.ReadTimeout("slow")] * 3, rec) as client:
        with pytest.raises(errors.EngageTimeoutError) as caught:
            await client.list_agents()
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(rec.requests) == 3


async def test_connect_errors_become_engage_connect_errors() -> None:
    rec = Recorder()
    async with mock_client([httpx.ConnectError("refused")] * 3, rec) as client:
        with pytest.raises(errors.EngageConnectError):
            await client.validate_me()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)],
)
async def test_rate_limited_requests_wait_as_long_as_retry_after_says(
    header: str, expected: float
) -> None:
    rec = Recorder()
    responses = [status(429, **{"Retry-After": header}), ok([])]
    async with mock_client(responses, rec) as client:
        assert await client.search_own_conversations() == []
    # A floor: at least what the server asked, at most that or the first backoff step.
    [slept] = rec.sleeps
    assert expected <= slept <= max(expected, 0.01)
    assert rec.retries[0].failure is Failure.RATE_LIMITED


async def test_retry_after_beyond_the_cap_is_raised_instead_of_waited_for() -> None:
    rec = Recorder()
    async with mock_client([status(429, **{"Retry-After": "600"})], rec) as client:
        with pytest.raises(errors.RateLimited) as caught:
            await client.get_conversation("c1")
    assert caught.value.retry_after == 600.0
    assert caught.value.status_code == 429
    assert rec.sleeps == []


async def test_client_errors_are_not_retried() -> None:
    rec = Recorder()
    async with mock_client([status(404, "no such conversation")], rec) as client:
        with pytest.raises(errors.NotFound) as caught:
            await client.get_conversation("c1")
    assert caught.value.detail == "no such conversation"
    assert len(rec.requests) == 1


async def test_chat_is_resent_when_the_connection_was_never_made() -> None:
    rec = Recorder()
    responses: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.PoolTimeout("busy"),
        ok([message()]),
    ]
    async with mock_client(responses, rec) as client:
        answer = await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert [m.content for m in answer] == ["hi"]
    assert len(rec.requests) == 3


async def test_chat_is_resent_after_a_429() -> None:
    rec = Recorder()
    async with mock_client([status(429), ok([message()])], rec) as client:
        answer = await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert len(answer) == 1
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    "first",
    [status(500), status(502), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
)
async def test_chat_that_may_have_reached_the_server_raises_outcome_unknown_without_retry(
    first: httpx.Response | Exception,
) -> None:
    rec = Recorder()
    async with mock_client([first, ok([message()])], rec) as client:
        with pytest.raises(errors.ChatOutcomeUnknown) as caught:
            await client.chat("c1", [UserMessage(content="q")], agent="parrot")
    assert len(rec.requests) == 1
    assert caught.value.__cause__ is not None
    assert rec.sleeps == []


@pytest.mark.parametrize("first", [status(503), httpx.ReadTimeout("slow")])
async def test_create_conversation_is_not_repeated_when_it_may_have_succeeded(
    first: httpx.Response | Exception,
) -> None:
    rec = Recorder()
    async with mock_client([first, ok(conversation())], rec) as client:
        with pytest.raises(errors.OutcomeUnknown) as caught:
            await client.create_conversation(data={"thread": "t"}, source="slack")
    assert not isinstance(caught.value, errors.ChatOutcomeUnknown)
    assert len(rec.requests) == 1


async def test_add_messages_after_a_connect_error_is_sent_again() -> None:
    rec = Recorder()
    responses: list[httpx.Response | Exception] = [
        httpx.ConnectTimeout("slow"),
        ok([message("user", "q")]),
    ]
    async with mock_client(responses, rec) as client:
        stored = await client.add_messages("c1", [UserMessage(content="q")])
    assert stored[0].role == "user"
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, errors.BadRequest),
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (405, errors.MethodNotAllowed),
        (409, errors.AlreadyExists),
        (422, errors.Unprocessable),
        (418, errors.EngageStatusError),
    ],
)
async def test_status_codes_map_to_their_errors(
    code: int, error: type[errors.EngageStatusError]
) -> None:
    rec = Recorder()
    async with mock_client([status(code, {"reason": "x"})], rec) as client:
        with pytest.raises(error) as caught:
            await client.get_conversation("c1")
    assert type(caught.value) is error
    assert caught.value.status_code == code
    assert caught.value.context == {"reason": "x"}


async def test_a_non_json_error_body_keeps_its_text_as_detail() -> None:
    rec = Recorder()
    policy = RetryPolicy(max_attempts=1)
    bad_gateway = httpx.Response(502, text="<html>bad gateway</html>")
    async with mock_client([bad_gateway], rec, policy=policy) as client:
        with pytest.raises(errors.ServerError) as caught:
            await client.get_conversation("c1")
    assert caught.value.detail == "<html>bad gateway</html>"
    assert caught.value.context == {"response": "<html>bad gateway</html>"}


async def test_a_2xx_that_is_not_the_contract_shape_is_a_protocol_error() -> None:
    rec = Recorder()
    responses = [httpx.Response(200, text="not json"), ok({"id": "c1"})]
    async with mock_client(responses, rec) as client:
        with pytest.raises(errors.EngageProtocolError):
            await client.get_conversation("c1")
        with pytest.raises(errors.EngageProtocolError):
            await client.get_conversation("c1")


async def test_requests_carry_auth_headers_json_bodies_and_lowercase_booleans() -> None:
    rec = Recorder()
    responses = [ok([]), ok([message()]), ok([message()]), ok(conversation())]
    async with mock_client(responses, rec) as client:
        await client.search_own_conversations(limit=5, reversed=False, tag_id="t1")
        await client.chat("c1", [UserMessage(content="a"), UserMessage(content="b")], agent="x")
        await client.chat("c1", [], agent="x", return_inputs=True)
        await client.update_conversation("c/1", data={"k": 1})
    search, chat, chat_inputs, patch = rec.requests
    assert search.headers["x-api-key"] == "key-1"
    assert search.headers["x-org-id"] == "org-1"
    assert dict(search.url.params) == {
        "reversed": "false", "limit": "5", "offset": "0", "tag_id": "t1",
    }  # fmt: skip
    assert dict(chat.url.params) == {"agent": "x"}
    assert chat.headers["content-type"] == "application/json"
    assert [m["content"] for m in json.loads(chat.content)["messages"]] == ["a", "b"]
    assert dict(chat_inputs.url.params) == {"agent": "x", "return_inputs": "true"}
    assert json.loads(chat_inputs.content) == {"messages": []}
    assert patch.url.raw_path == b"/v1/conversations/c%2F1"
    assert json.loads(patch.content) == {"data": {"k": 1}, "source": None}


async def test_an_injected_http_client_is_left_open_and_an_owned_one_is_closed() -> None:
    from bridge.engage.client import EngageClient

    injected = httpx.AsyncClient()
    client = EngageClient(base_url="http://x", api_key="k", org_id="o", http=injected)
    await client.aclose()
    assert not injected.is_closed
    await injected.aclose()
    async with EngageClient(base_url="http://x", api_key="k", org_id="o") as owned:
        pass
    assert owned._http_client.is_closed


async def test_a_503_with_retry_after_waits_as_asked_before_repeating_a_read() -> None:
    rec = Recorder()
    async with mock_client([status(503, **{"Retry-After": "1"}), ok([])], rec) as client:
        assert await client.get_conversation_tags("c1") == []
    assert rec.sleeps == [1.0]


async def test_an_agents_list_that_is_not_an_object_is_a_protocol_error() -> None:
    rec = Recorder()
    async with mock_client([ok([{"name": "parrot"}])], rec) as client:
        with pytest.raises(errors.EngageProtocolError):
            await client.list_agents()
