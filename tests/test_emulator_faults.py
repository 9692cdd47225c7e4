"""Fault injection: standing faults, per-request header faults, counters, rates, broken streams."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bridge.emulator.faults import Faults, parse_header
from tests.fixtures_core import wait_until
from tests.fixtures_emulator import Emulator

CHAT_BODY = {"messages": [{"role": "user", "content": "hi", "name": None}]}


async def new_conversation(client: httpx.AsyncClient) -> str:
    conversation_id: str = (await client.post("/v1/conversations", json={})).json()["id"]
    return conversation_id


async def post_chat(client: httpx.AsyncClient, cid: str, **headers: str) -> httpx.Response:
    return await client.post(
        f"/v1/conversations/{cid}/chat", params={"agent": "parrot"}, json=CHAT_BODY, headers=headers
    )


async def read_stream(client: httpx.AsyncClient, cid: str, received: list[str]) -> None:
    async with client.stream(
        "POST",
        f"/v1/conversations/{cid}/chat",
        params={"agent": "pensions-questions-latest", "stream": "true"},
        json=CHAT_BODY,
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                received.append(line)


async def test_next_two_chat_calls_fail_then_chat_works_and_other_routes_never_fail(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.scope = "chat"
    emulator.faults.fail_next = 2
    statuses = [(await post_chat(emulator_http, cid)).status_code for _ in range(3)]
    other = await emulator_http.get(f"/v1/conversations/{cid}")
    assert statuses == [503, 503, 200]
    assert other.status_code == 200
    assert len(emulator.state.runs_for(cid)) == 1  # failed calls never reached the agent


async def test_injected_429_carries_retry_after_and_a_json_detail(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    emulator.faults.update({"status": 429, "retry_after": 1, "fail_next": 1})
    response = await emulator_http.get("/v1/conversations/me")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "detail" in response.json()


async def test_seeded_error_rate_is_reproducible(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    async def outcomes() -> list[int]:
        emulator.faults.update({"rate": 0.5, "seed": 7})
        return [(await emulator_http.get("/v1/agents")).status_code for _ in range(20)]

    first, second = await outcomes(), await outcomes()
    assert first == second
    assert {200, 503} == set(first)


async def test_header_faults_apply_to_that_request_only(emulator_http: httpx.AsyncClient) -> None:
    failed = await emulator_http.get(
        "/v1/agents", headers={"X-Emulator-Faults": "status=502,retry_after=0.5"}
    )
    fine = await emulator_http.get("/v1/agents")
    assert failed.status_code == 502
    assert failed.headers["retry-after"] == "0.5"
    assert fine.status_code == 200


async def test_latency_delays_the_response(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    emulator.faults.latency = 0.2
    started = time.monotonic()
    response = await emulator_http.get("/v1/agents")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_admin_and_openapi_are_never_faulted(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    emulator.faults.rate = 1.0
    assert (await emulator_http.get("/openapi.json")).status_code == 200
    assert (await emulator_http.get("/_emulator/faults")).json()["rate"] == 1.0
    assert (await emulator_http.get("/v1/agents")).status_code == 503


async def test_faults_can_be_set_and_reset_over_http(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    changed = await emulator_http.put("/_emulator/faults", json={"scope": "chat", "fail_next": 3})
    bad = await emulator_http.put("/_emulator/faults", json={"nonsense": 1})
    wrong_type = await emulator_http.put("/_emulator/faults", json={"rate": "often"})
    assert changed.json()["fail_next"] == 3
    assert emulator.faults.scope == "chat"
    assert bad.status_code == 422
    assert wrong_type.status_code == 422
    await emulator_http.delete("/_emulator/faults")
    assert emulator.faults.fail_next == 0
    assert emulator.faults.scope == "all"


async def test_a_held_chat_call_waits_unstored_until_released_and_other_routes_go_on(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.scope = "chat"
    emulator.faults.hold = True

    chat = asyncio.create_task(post_chat(emulator_http, cid))
    await wait_until(lambda: emulator.faults.held == 1)
    agents = await emulator_http.get("/v1/agents")
    assert agents.status_code == 200  # out of scope: not held
    assert emulator.state.messages(cid) == []  # the held call has not run: nothing stored
    assert not chat.done()
    emulator.faults.hold = False
    response = await asyncio.wait_for(chat, timeout=10)

    assert response.status_code == 200
    assert [m.content for m in emulator.state.messages(cid)] == ["hi", "You said: hi"]
    assert emulator.faults.held == 0


async def test_a_held_answer_has_its_inputs_and_run_stored_and_waits_until_released(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.scope = "chat"
    emulator.faults.hold_answers = True
    received: list[str] = []

    stream = asyncio.create_task(read_stream(emulator_http, cid, received))
    await wait_until(lambda: emulator.faults.answers_held == 1)
    await wait_until(lambda: len(received) == 2)  # the agent's status texts came first
    assert [m.content for m in emulator.state.messages(cid)] == ["hi"]
    assert len(emulator.state.runs_for(cid)) == 1
    emulator.faults.hold_answers = False
    await asyncio.wait_for(stream, timeout=10)

    assert emulator.state.messages(cid)[-1].role == "agent"
    assert emulator.faults.answers_held == 0


async def test_answers_to_hold_holds_only_that_many_runs_and_later_ones_answer_at_once(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.scope = "chat"
    emulator.faults.answers_to_hold = 1
    emulator.faults.hold_answers = True
    first = asyncio.create_task(post_chat(emulator_http, cid))
    await wait_until(lambda: emulator.faults.answers_held == 1)

    second = await post_chat(emulator_http, cid)  # asked after it: not held

    assert second.status_code == 200
    assert not first.done()
    assert emulator.faults.answers_held == 1
    emulator.faults.hold_answers = False
    assert (await asyncio.wait_for(first, timeout=10)).status_code == 200
    assert emulator.faults.answers_to_hold == 0


async def test_a_reset_releases_held_calls(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.hold = True
    chat = asyncio.create_task(post_chat(emulator_http, cid))
    await wait_until(lambda: emulator.faults.held == 1)
    emulator.faults.hold_answers = True
    emulator.faults.hold = False
    await wait_until(lambda: emulator.faults.answers_held == 1)

    await emulator_http.delete("/_emulator/faults")

    assert (await asyncio.wait_for(chat, timeout=10)).status_code == 200
    assert (emulator.faults.held, emulator.faults.answers_held) == (0, 0)


async def test_a_reset_releases_answers_it_caught_even_when_the_next_hold_follows_at_once(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    # The shared emulator resets between tests; a slow agent of one test must not be caught
    # by the next test's hold (it would count in that test's answers_held).
    cid = await new_conversation(emulator_http)
    emulator.state.agents["slow"].seconds = 0.2  # type: ignore[attr-defined]
    emulator.faults.hold_answers = True
    path = f"/v1/conversations/{cid}/chat"
    chat = asyncio.create_task(emulator_http.post(path, params={"agent": "slow"}, json=CHAT_BODY))
    await wait_until(lambda: len(emulator.state.runs_for(cid)) == 1)

    emulator.faults.reset()
    emulator.faults.hold_answers = True  # the next test's hold

    assert (await asyncio.wait_for(chat, timeout=10)).status_code == 200
    assert emulator.state.messages(cid)[-1].content == "You said: hi"
    assert emulator.faults.answers_held == 0


async def test_lost_response_is_processed_but_the_client_sees_an_error(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    response = await post_chat(
        emulator_http, cid, **{"X-Emulator-Faults": "status=502,rate=0,lose_response=1"}
    )
    assert response.status_code == 502
    assert [m.content for m in emulator.state.messages(cid)] == ["hi", "You said: hi"]


async def test_broken_stream_drops_the_connection_without_done_but_stores_the_answer(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.break_stream_after = 1
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        await read_stream(emulator_http, cid, received)
    assert len(received) == 1
    assert "[DONE]" not in received[0]
    assert emulator.state.messages(cid)[-1].role == "agent"


async def test_agent_delay_holds_the_answer_back_after_status(
    emulator_http: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(emulator_http)
    started = time.monotonic()
    response = await emulator_http.post(
        f"/v1/conversations/{cid}/chat",
        params={"agent": "parrot"},
        json=CHAT_BODY,
        headers={"X-Emulator-Faults": "agent_delay=0.2"},
    )
    assert response.json()[0]["content"] == "You said: hi"
    assert time.monotonic() - started >= 0.2


async def test_agent_error_is_a_500_or_an_error_event(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.faults.agent_error = True
    plain = await post_chat(emulator_http, cid)
    streamed = await emulator_http.post(
        f"/v1/conversations/{cid}/chat",
        params={"agent": "parrot", "stream": "true"},
        json={"messages": []},
    )
    assert plain.status_code == 500
    assert plain.json() == {"detail": "The agent failed"}
    assert '"error": true' in streamed.text
    assert "[DONE]" not in streamed.text


async def test_malformed_fault_header_is_a_400(emulator_http: httpx.AsyncClient) -> None:
    response = await emulator_http.get("/v1/agents", headers={"X-Emulator-Faults": "explode=1"})
    assert response.status_code == 400
    assert "explode" in response.json()["detail"]


def test_parse_header_reads_every_documented_key() -> None:
    header = "latency=0.2,status=503,rate=0.5,retry_after=1,break_stream_after=1,agent_delay=2"
    assert parse_header(header) == {
        "latency": 0.2,
        "status": 503,
        "rate": 0.5,
        "retry_after": 1,
        "break_stream_after": 1,
        "agent_delay": 2,
    }


def test_scope_prefix_limits_faults_to_matching_paths() -> None:
    faults = Faults(scope="/v1/tags", fail_next=1)
    assert faults.plan("GET", "/v1/agents").fail_status is None
    assert faults.plan("GET", "/v1/tags").fail_status == 503
    assert faults.plan("GET", "/v1/tags").fail_status is None
