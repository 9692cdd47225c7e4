"""Chat semantics of the emulator: history, pending user messages, runs, agents, streaming."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from bridge.emulator.agents import pensions_answer
from tests.fixtures_core import wait_until
from tests.fixtures_emulator import Emulator, release_answers


def user(content: str) -> dict[str, Any]:
    return {"role": "user", "content": content, "name": None}


async def new_conversation(client: httpx.AsyncClient) -> str:
    conversation_id: str = (await client.post("/v1/conversations", json={})).json()["id"]
    return conversation_id


async def chat(
    client: httpx.AsyncClient, cid: str, *contents: str, agent: str = "parrot", **params: Any
) -> list[dict[str, Any]]:
    response = await client.post(
        f"/v1/conversations/{cid}/chat",
        params={"agent": agent, **params},
        json={"messages": [user(c) for c in contents]},
    )
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def stream_events(
    client: httpx.AsyncClient, cid: str, *contents: str, agent: str, **params: Any
) -> list[str]:
    """The `data:` payloads of one streamed chat, [DONE] included."""
    data: list[str] = []
    async with client.stream(
        "POST",
        f"/v1/conversations/{cid}/chat",
        params={"agent": agent, "stream": "true", **params},
        json={"messages": [user(c) for c in contents]},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                raise AssertionError("the platform sends unnamed events only")
            if line.startswith("data: "):
                data.append(line.removeprefix("data: "))
    return data


async def test_parrot_answers_with_a_full_message_read(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    [reply] = await chat(emulator_http, cid, "hello")
    assert reply["content"] == "You said: hello"
    assert reply["role"] == "agent"
    assert reply["name"] == "parrot"
    assert reply["user_id"] == emulator.user_id
    assert reply["org_id"] == emulator.org_id
    assert reply["conversation_id"] == cid
    assert reply["run_id"] == emulator.state.runs_for(cid)[0].id


async def test_history_holds_user_and_agent_turns_oldest_first(
    emulator_http: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(emulator_http)
    await chat(emulator_http, cid, "one")
    await chat(emulator_http, cid, "two")
    history = (await emulator_http.get(f"/v1/conversations/{cid}/messages")).json()
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "one"),
        ("agent", "You said: one"),
        ("user", "two"),
        ("agent", "You said: two"),
    ]


async def test_several_user_messages_are_answered_together(
    emulator_http: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(emulator_http)
    replies = await chat(emulator_http, cid, "first", "second")
    assert [r["content"] for r in replies] == ["You said: first\nsecond"]


async def test_messages_added_without_chat_are_answered_by_an_empty_chat(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    added = await emulator_http.post(f"/v1/conversations/{cid}/messages", json=[user("queued")])
    replies = await chat(emulator_http, cid)
    assert added.json()[0]["content"] == "queued"
    assert emulator.state.runs_for(cid)[0].id == replies[0]["run_id"]
    assert [r["content"] for r in replies] == ["You said: queued"]


async def test_agent_stays_silent_when_the_last_saved_message_is_not_a_users(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    await chat(emulator_http, cid, "hi")
    assert await chat(emulator_http, cid) == []
    assert len(emulator.state.messages(cid)) == 2
    assert len(emulator.state.runs_for(cid)) == 2  # the agent was still called


async def test_return_inputs_puts_the_saved_inputs_first(emulator_http: httpx.AsyncClient) -> None:
    cid = await new_conversation(emulator_http)
    replies = await chat(emulator_http, cid, "a", "b", return_inputs="true")
    assert [(r["role"], r["content"]) for r in replies] == [
        ("user", "a"),
        ("user", "b"),
        ("agent", "You said: a\nb"),
    ]


async def test_conversation_summary_is_the_first_user_message_once_there_is_one(
    emulator_http: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(emulator_http)
    before = (await emulator_http.get(f"/v1/conversations/{cid}")).json()["summary"]
    await chat(emulator_http, cid, "How do I transfer my pension? " + "x" * 100)
    after = (await emulator_http.get(f"/v1/conversations/{cid}")).json()["summary"]
    assert before == ""
    assert after.startswith("How do I transfer my pension?")
    assert len(after) <= 60


async def test_pensions_agent_counts_turns_and_remembers_the_name(
    emulator_http: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(emulator_http)
    agent = "pensions-questions-latest"
    [first] = await chat(emulator_http, cid, "Hi, my name is Ana", agent=agent)
    [second] = await chat(emulator_http, cid, "When can I retire?", agent=agent)
    assert first["content"].startswith("Turn 1. Nice to meet you, Ana.")
    assert second["content"].startswith("Turn 2. Nice to see you again, Ana.")
    assert "When can I retire?" in second["content"]


def test_pensions_answer_without_a_name_just_says_hello() -> None:
    assert pensions_answer([], []).startswith("Turn 1. Hello.")


async def test_inspector_info_message_is_stored_and_returned_before_the_answer(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    replies = await chat(emulator_http, cid, "look", agent="inspector")
    assert [r["role"] for r in replies] == ["info", "agent"]
    assert [m.role for m in emulator.state.messages(cid)] == ["user", "info", "agent"]


async def test_unknown_agent_is_404_and_stores_nothing(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    response = await emulator_http.post(
        f"/v1/conversations/{cid}/chat", params={"agent": "nobody"}, json={"messages": []}
    )
    assert response.status_code == 404
    assert emulator.state.messages(cid) == []


async def test_unknown_role_is_422(emulator_http: httpx.AsyncClient) -> None:
    cid = await new_conversation(emulator_http)
    response = await emulator_http.post(
        f"/v1/conversations/{cid}/chat",
        params={"agent": "parrot"},
        json={"messages": [{"role": "assistant", "content": "x"}]},
    )
    assert response.status_code == 422


async def test_stream_sends_status_then_agent_then_done(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    data = await stream_events(emulator_http, cid, "hi", agent="pensions-questions-latest")
    messages = [json.loads(d) for d in data[:-1]]
    assert data[-1] == "[DONE]"
    assert [m["role"] for m in messages] == ["status", "status", "agent"]
    assert all(m["id"] and m["run_id"] and m["created"] for m in messages)
    stored = [m.role for m in emulator.state.messages(cid)]
    assert stored == ["user", "agent"]  # status messages are not history


async def test_stream_with_return_inputs_starts_with_the_inputs(
    emulator_http: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(emulator_http)
    data = await stream_events(emulator_http, cid, "a", agent="parrot", return_inputs="true")
    assert [json.loads(d)["role"] for d in data[:-1]] == ["user", "agent"]


async def test_an_answer_is_stored_even_when_the_stream_client_goes_away(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    cid = await new_conversation(emulator_http)
    emulator.state.agents["slow"].seconds = 0.0  # type: ignore[attr-defined]
    emulator.faults.hold_answers = True  # the agent answers only after the client has gone
    async with emulator_http.stream(
        "POST",
        f"/v1/conversations/{cid}/chat",
        params={"agent": "slow", "stream": "true"},
        json={"messages": [user("bye")]},
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break  # the first status message; then hang up
    assert [m.role for m in emulator.state.messages(cid)] == ["user"]
    await wait_until(lambda: emulator.faults.answers_held == 1)
    release_answers(emulator)
    await wait_until(lambda: [m.role for m in emulator.state.messages(cid)] == ["user", "agent"])
    assert emulator.state.messages(cid)[-1].content == "You said: bye"


@pytest.mark.parametrize("stream", [False, True])
async def test_concurrent_chats_on_different_conversations_do_not_mix(
    emulator_http: httpx.AsyncClient, stream: bool
) -> None:
    cids = [await new_conversation(emulator_http) for _ in range(5)]
    if stream:
        results = await asyncio.gather(
            *(stream_events(emulator_http, c, c, agent="parrot") for c in cids)
        )
        contents = [json.loads(r[0])["content"] for r in results]
    else:
        replies = await asyncio.gather(*(chat(emulator_http, c, c) for c in cids))
        contents = [r[0]["content"] for r in replies]
    assert contents == [f"You said: {c}" for c in cids]


async def test_an_agent_may_answer_with_several_messages(emulator_http: httpx.AsyncClient) -> None:
    cid = await new_conversation(emulator_http)
    replies = await chat(emulator_http, cid, "hi", agent="parrot-twice")
    assert [r["content"] for r in replies] == ["You said: hi", "Anything else?"]
    assert len({r["id"] for r in replies}) == 2
