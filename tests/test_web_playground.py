"""The playground API and operator view on a running bridge: chat, take over, resolve, inspect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bridge.chat import WORKING_STATUS
from bridge.runtime import BridgeRuntime
from tests.fixtures_core import wait_until


@pytest.fixture
async def http(web_bridge: BridgeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_bridge.http_url or "") as client:
        yield client


class Thread:
    def __init__(self, http: httpx.AsyncClient, thread_id: str) -> None:
        self.http, self.id = http, thread_id
        self.base = f"/playground/api/threads/{thread_id}"

    async def say(self, text: str, as_: str = "user") -> dict[str, Any]:
        body = {"text": text, "as": as_, "client_id": uuid.uuid4().hex}
        response = await self.http.post(f"{self.base}/messages", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def command(self, name: str) -> dict[str, Any]:
        body = {"command": name, "client_id": uuid.uuid4().hex}
        response = await self.http.post(f"{self.base}/commands", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def poll(self) -> dict[str, Any]:
        response = await self.http.get(self.base)
        assert response.status_code == 200
        return dict(response.json())

    async def roles(self) -> list[str]:
        return [e["role"] for e in (await self.poll())["entries"]]

    async def wait(self, predicate: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}

        async def check() -> bool:
            result.update(await self.poll())
            return bool(predicate(result))

        await wait_until(check)
        return result


async def new_thread(http: httpx.AsyncClient) -> Thread:
    response = await http.post("/playground/api/threads", json={})
    assert response.status_code == 201
    return Thread(http, response.json()["id"])


def runs_of(emulator: Any, conversation_id: str) -> int:
    return sum(1 for r in emulator.state.runs.values() if r.read.conversation_id == conversation_id)


def agent_count(state: dict[str, Any]) -> int:
    return sum(1 for e in state["entries"] if e["role"] == "agent")


async def test_a_playground_thread_chats_hands_off_resolves_and_reopens(
    http: httpx.AsyncClient, emulator: Any
) -> None:
    thread = await new_thread(http)
    assert (await thread.poll())["state"] == "new"

    assert (await thread.say("What is a pension?"))["status"] == "accepted"
    state = await thread.wait(lambda s: agent_count(s) == 1)
    assert state["state"] == "bot"
    assert state["status_line"] is None
    assert [e["role"] for e in state["entries"]] == ["user", "agent"]
    cid = state["conversation_id"]
    conversation = emulator.state.conversations[cid]
    assert conversation.source == "web"
    assert conversation.data["ticket_id"] == thread.id

    await thread.command("handoff")
    await thread.wait(lambda s: s["state"] == "human")
    assert conversation.data["status"] == "human"
    await thread.say("Anyone there?")
    await thread.say("Yes, I am a person.", as_="staff")
    await wait_until(lambda: any(m.content == "Anyone there?" for m in conversation.messages))
    assert runs_of(emulator, cid) == 1

    await thread.command("resolve")
    await thread.wait(lambda s: s["state"] == "resolved")
    assert emulator.state.conversations[cid].data["status"] == "resolved"

    await thread.say("One more thing")
    state = await thread.wait(lambda s: s["state"] == "bot" and agent_count(s) == 2)
    assert runs_of(emulator, cid) == 2
    roles = [e["role"] for e in state["entries"]]
    assert roles.count("notice") == 3
    assert roles.count("staff") == 1


async def test_operator_view_lists_threads_and_shows_history(
    http: httpx.AsyncClient, web_bridge: BridgeRuntime
) -> None:
    thread = await new_thread(http)
    await thread.say("Tell me about annuities")
    state = await thread.wait(lambda s: agent_count(s) == 1)
    await thread.command("handoff")
    await thread.wait(lambda s: s["state"] == "human")

    listing = await http.get("/operator")
    assert listing.status_code == 200
    key = f"web:playground:local:{thread.id}"
    assert key in listing.text
    assert state["conversation_id"] in listing.text
    assert 'data-state="human"' in listing.text
    assert ">parrot</td>" in listing.text

    page = await http.get(f"/operator/threads/{quote(key, safe='')}")
    assert page.status_code == 200
    assert "Tell me about annuities" in page.text
    assert 'data-role="agent"' in page.text
    assert state["conversation_id"] in page.text

    missing = await http.get(f"/operator/threads/{quote('web:playground:local:nope', safe='')}")
    assert missing.status_code == 404


async def test_a_staff_message_before_any_conversation_is_noted_not_sent(
    http: httpx.AsyncClient,
) -> None:
    thread = await new_thread(http)
    assert (await thread.say("hello", as_="staff"))["status"] == "ignored"
    assert await thread.roles() == ["staff", "local"]


async def test_a_retried_post_shows_and_sends_the_message_once(
    http: httpx.AsyncClient, emulator: Any
) -> None:
    thread = await new_thread(http)
    body = {"text": "Only once", "as": "user", "client_id": "same-client-id"}
    first = await http.post(f"{thread.base}/messages", json=body)
    second = await http.post(f"{thread.base}/messages", json=body)
    assert first.json()["status"] == "accepted"
    assert second.json()["status"] == "duplicate"
    state = await thread.wait(lambda s: agent_count(s) == 1)
    assert [e["role"] for e in state["entries"]] == ["user", "agent"]


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("messages", {"text": "", "client_id": "abcd1234"}, "text must be"),
        ("messages", {"text": "x" * 9000, "client_id": "abcd1234"}, "text must be"),
        ("messages", {"text": "hi", "client_id": "no spaces!"}, "client_id"),
        ("commands", {"command": "reset", "client_id": "abcd1234"}, "command must be"),
        ("messages", ["not", "an", "object"], "JSON object"),
    ],
)
async def test_bad_requests_are_400_with_a_reason(
    http: httpx.AsyncClient, path: str, body: Any, problem: str
) -> None:
    thread = await new_thread(http)
    response = await http.post(f"{thread.base}/{path}", json=body)
    assert response.status_code == 400
    assert problem in response.json()["error"]


async def test_playground_page_and_its_static_files_are_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/web/static/playground.js">' in page.text
    script = await http.get("/web/static/playground.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "textContent" in script.text
    assert (await http.get("/web/static/style.css")).status_code == 200
    assert (await http.get("/web/static/..%2Fstore.py")).status_code == 404


@pytest.mark.parametrize("web_agent", ["slow"])
async def test_status_line_shows_while_the_agent_works_and_clears_after(
    http: httpx.AsyncClient,
) -> None:
    thread = await new_thread(http)
    await thread.say("Take your time")
    working = await thread.wait(lambda s: s["status_line"] is not None)
    # The generic status shows from the start of the call; the agent's own status replaces it.
    assert working["status_line"] in (WORKING_STATUS, "Thinking slowly…")
    assert agent_count(working) == 0
    streamed = await thread.wait(lambda s: s["status_line"] == "Thinking slowly…")
    assert agent_count(streamed) == 0
    done = await thread.wait(lambda s: agent_count(s) == 1)
    assert done["status_line"] is None


@pytest.mark.parametrize("web_agent", ["inspector"])
async def test_info_messages_never_reach_the_page(http: httpx.AsyncClient) -> None:
    thread = await new_thread(http)
    await thread.say("Look inside")
    state = await thread.wait(lambda s: agent_count(s) == 1)
    texts = [e["text"] for e in state["entries"]]
    assert texts == ["Look inside", "Inspected: Look inside"]


async def test_posts_that_are_not_json_are_refused_so_other_sites_cannot_act_as_staff(
    http: httpx.AsyncClient,
) -> None:
    thread = await new_thread(http)
    body = '{"command": "resolve", "client_id": "abcd1234"}'
    plain = {"Content-Type": "text/plain"}
    response = await http.post(f"{thread.base}/commands", content=body, headers=plain)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    created = await http.post("/playground/api/threads", content="{}", headers=plain)
    assert created.status_code == 415


async def test_the_agent_list_offers_the_platforms_agents_and_the_default(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/playground/api/agents")
    assert response.status_code == 200
    listing = response.json()
    assert listing["default"] == "parrot"
    names = [agent["name"] for agent in listing["agents"]]
    assert {"parrot", "pensions-questions-latest", "slow"} <= set(names)
    slow = next(a for a in listing["agents"] if a["name"] == "slow")
    assert slow["description"]


async def test_staff_switch_a_threads_agent_with_the_agent_command(
    http: httpx.AsyncClient,
) -> None:
    thread = await new_thread(http)
    await thread.say("hello")
    await thread.wait(lambda s: agent_count(s) == 1)
    body = {"command": "agent", "agent": "parrot-twice", "client_id": uuid.uuid4().hex}
    assert (await http.post(f"{thread.base}/commands", json=body)).status_code == 200
    # The record names the new agent a moment before the notice is posted: wait for both.
    state = await thread.wait(
        lambda s: s["agent"] == "parrot-twice" and s["entries"][-1]["role"] == "notice"
    )
    assert "answered by parrot-twice" in state["entries"][-1]["text"]
    bad = {"command": "agent", "agent": "no spaces allowed", "client_id": uuid.uuid4().hex}
    refused = await http.post(f"{thread.base}/commands", json=bad)
    assert refused.status_code == 400


async def test_the_agent_picked_before_the_first_message_answers_that_message(
    http: httpx.AsyncClient,
) -> None:
    thread = await new_thread(http)
    body = {"text": "hello", "client_id": uuid.uuid4().hex, "agent": "parrot-twice"}
    assert (await http.post(f"{thread.base}/messages", json=body)).status_code == 200
    state = await thread.wait(lambda s: agent_count(s) == 2)
    assert state["agent"] == "parrot-twice"
    assert [e["text"] for e in state["entries"][1:]] == ["You said: hello", "Anything else?"]
    # Once the thread has its conversation, only the `agent` command switches it.
    later = {"text": "again", "client_id": uuid.uuid4().hex, "agent": "parrot"}
    assert (await http.post(f"{thread.base}/messages", json=later)).status_code == 200
    state = await thread.wait(lambda s: agent_count(s) == 4)
    assert state["agent"] == "parrot-twice"
    assert [e["text"] for e in state["entries"][-2:]] == ["You said: again", "Anything else?"]


async def test_an_unknown_agent_picked_for_the_first_message_falls_back_with_a_notice(
    http: httpx.AsyncClient,
) -> None:
    thread = await new_thread(http)
    body = {"text": "hello", "client_id": uuid.uuid4().hex, "agent": "no-such-agent"}
    assert (await http.post(f"{thread.base}/messages", json=body)).status_code == 200
    state = await thread.wait(lambda s: agent_count(s) == 1)
    assert [(e["role"], e["text"]) for e in state["entries"][1:]] == [
        ("notice", "There is no agent called no-such-agent; parrot answers instead."),
        ("agent", "You said: hello"),
    ]
    assert state["agent"] == "parrot"
    bad = {"text": "hi", "client_id": uuid.uuid4().hex, "agent": "two words"}
    assert (await http.post(f"{thread.base}/messages", json=bad)).status_code == 400


async def test_favicon_is_served(http: httpx.AsyncClient) -> None:
    icon = await http.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert (await http.get("/web/static/favicon.svg")).status_code == 200


async def test_a_conversation_gone_upstream_is_explained_on_the_operator_page(
    http: httpx.AsyncClient, emulator: Any
) -> None:
    thread = await new_thread(http)
    await thread.say("Soon deleted")
    state = await thread.wait(lambda s: agent_count(s) == 1)
    emulator.state.delete_conversation(state["conversation_id"])
    key = quote(f"web:playground:local:{thread.id}", safe="")
    page = await http.get(f"/operator/threads/{key}")
    assert page.status_code == 200
    assert "gone upstream" in page.text
