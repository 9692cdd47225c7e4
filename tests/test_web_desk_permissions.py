"""Web playground and desk: a customer's typed command cannot take a staff-held thread back."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from bridge.models import ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.desk import FakeDesk
from tests.fixtures_core import wait_until
from tests.fixtures_desk import desk_event, signed


async def test_a_playground_customer_cannot_resume_resolve_reset_or_reroute_a_staff_held_thread(
    web_bridge: BridgeRuntime,
) -> None:
    async with httpx.AsyncClient(base_url=web_bridge.http_url or "") as http:
        created = await http.post("/playground/api/threads", json={})
        thread_id = created.json()["id"]
        base = f"/playground/api/threads/{thread_id}"

        async def say(text: str, as_: str = "user") -> None:
            body = {"text": text, "as": as_, "client_id": uuid.uuid4().hex}
            response = await http.post(f"{base}/messages", json=body)
            assert response.status_code == 200, response.text

        async def poll() -> dict[str, Any]:
            response = await http.get(base)
            assert response.status_code == 200
            return dict(response.json())

        await say("What is a pension?")
        await wait_until(lambda: _has(poll, "agent"))
        await say("A person here.", as_="staff")
        await wait_until(lambda: _state(poll, "human"))
        record = await web_bridge.bridge.threads.get(
            ThreadKey.parse(f"web:playground:local:{thread_id}")
        )
        for command in ("resume", "resolve", "reset", "agent echo"):
            await say(command)

        async def refused_four_times() -> bool:
            entries = (await poll())["entries"]
            return (
                sum(1 for e in entries if e["role"] == "local" and "Only staff" in e["text"]) == 4
            )

        await wait_until(refused_four_times)
        state = await poll()
        assert state["state"] == "human"
        assert record is not None
        assert state["conversation_id"] == record.conversation_id
        assert state["agent"] == record.agent
        assert [e["role"] for e in state["entries"]].count("notice") == 1  # the hand-off only


async def _has(poll: Any, role: str) -> bool:
    return any(e["role"] == role for e in (await poll())["entries"])


async def _state(poll: Any, state: str) -> bool:
    return bool((await poll())["state"] == state)


async def test_a_desk_customer_comment_cannot_resume_a_ticket_an_agent_took_over(
    desk_bridge: BridgeRuntime, fake_desk: FakeDesk
) -> None:
    async def deliver(event: dict[str, Any]) -> None:
        raw, headers = signed(event)
        async with httpx.AsyncClient(base_url=desk_bridge.http_url or "") as http:
            response = await http.post("/desk/webhook", content=raw, headers=headers)
        assert response.status_code == 200, response.text

    thread = ThreadKey("desk", "acme", "tickets", "T-P")
    await deliver(desk_event("ticket.created", ticket_id="T-P", body="Help me"))
    await fake_desk.wait_for_callbacks(1)
    await deliver(
        desk_event("ticket.agent_comment", ticket_id="T-P", body="On it", author_id="agent-7")
    )

    async def held() -> bool:
        record = await desk_bridge.bridge.threads.get(thread)
        return record is not None and record.status == "human"

    await wait_until(held)
    for text in ("resume", "resolve", "reset"):
        await deliver(desk_event("ticket.comment", ticket_id="T-P", body=text))

    async def drained() -> bool:
        return not await desk_bridge.redis.exists(f"{{{thread}}}:inbox")

    await wait_until(drained)
    record = await desk_bridge.bridge.threads.get(thread)
    assert record is not None
    assert record.status == "human"
    kinds = [c["kind"] for c in fake_desk.callbacks]
    assert kinds.count("notice") == 1  # the hand-off only: no "back to the assistant"
