"""The support lifecycle on the desk path: bot, human, resolved, reopened, seen on the emulator."""

from __future__ import annotations

from typing import Any

import httpx

from bridge.runtime import BridgeRuntime
from tests.fakes.desk import FakeDesk
from tests.fixtures_core import wait_until
from tests.fixtures_desk import desk_event, signed


class Ticket:
    """One desk ticket driven through a running bridge."""

    def __init__(self, rt: BridgeRuntime, emulator: Any, desk: FakeDesk, ticket_id: str) -> None:
        self.rt, self.emulator, self.desk, self.ticket_id = rt, emulator, desk, ticket_id

    async def send(self, type_: str, **kw: Any) -> None:
        raw, headers = signed(desk_event(type_, ticket_id=self.ticket_id, **kw))
        async with httpx.AsyncClient(base_url=self.rt.http_url or "") as http:
            response = await http.post("/desk/webhook", content=raw, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"

    def conversation(self) -> Any:
        [conversation] = [
            c
            for c in self.emulator.state.conversations.values()
            if c.data.get("ticket_id") == self.ticket_id
        ]
        return conversation

    def runs(self) -> int:
        cid = self.conversation().id
        return sum(
            1 for run in self.emulator.state.runs.values() if run.read.conversation_id == cid
        )

    def callbacks(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in self.desk.callbacks
            if c["ticket_id"] == self.ticket_id and kind in (None, c["kind"])
        ]

    async def wait_status(self, status: str) -> dict[str, Any]:
        await wait_until(lambda: self.conversation().data.get("status") == status)
        return dict(self.conversation().data)


async def test_ticket_walks_bot_human_resolved_reopened(
    desk_bridge: BridgeRuntime, emulator: Any, fake_desk: FakeDesk
) -> None:
    ticket = Ticket(desk_bridge, emulator, fake_desk, "T-LC1")

    await ticket.send("ticket.created", body="How do I change my contributions?")
    await fake_desk.wait_for_callbacks(1)
    assert ticket.runs() == 1
    assert ticket.conversation().data["status"] == "bot"

    await ticket.send(
        "ticket.agent_comment", author_id="agent-7", author_role="agent", body="I'll take it."
    )
    data = await ticket.wait_status("human")
    assert data["assignee"] == "agent-7"
    assert data["status_changed_at"]
    assert data["ticket_id"] == "T-LC1"
    assert data["user_id"] == "cust-1"
    assert ticket.conversation().source == "desk"
    await wait_until(lambda: len(ticket.callbacks("notice")) == 1)
    assert "Summary so far" in ticket.callbacks("notice")[0]["text"]

    await ticket.send("ticket.comment", body="Are you still there?")
    await wait_until(
        lambda: any(m.content == "Are you still there?" for m in ticket.conversation().messages)
    )
    assert ticket.runs() == 1
    assert len(ticket.callbacks("agent")) == 1

    await ticket.send("ticket.solved", body=None, assignee={"id": "agent-7", "name": "Bob"})
    data = await ticket.wait_status("resolved")
    assert data["ticket_id"] == "T-LC1"
    assert ticket.runs() == 1
    await wait_until(lambda: len(ticket.callbacks("notice")) == 2)

    await ticket.send("ticket.comment", body="It broke again")
    await ticket.wait_status("bot")
    await wait_until(lambda: len(ticket.callbacks("agent")) == 2)
    assert ticket.runs() == 2
    assert ticket.conversation().source == "desk"
    assert len(ticket.callbacks("notice")) == 3


async def test_assignment_hands_off_and_reopening_gives_the_ticket_back_to_the_bot(
    desk_bridge: BridgeRuntime, emulator: Any, fake_desk: FakeDesk
) -> None:
    ticket = Ticket(desk_bridge, emulator, fake_desk, "T-LC2")
    await ticket.send("ticket.created")
    await fake_desk.wait_for_callbacks(1)

    await ticket.send("ticket.assigned", body=None, assignee={"id": "agent-9", "name": "Eve"})
    data = await ticket.wait_status("human")
    assert data["assignee"] == "agent-9"
    await ticket.send("ticket.comment", body="Hello?")
    await wait_until(lambda: any(m.content == "Hello?" for m in ticket.conversation().messages))
    assert ticket.runs() == 1

    await ticket.send("ticket.solved", body=None)
    await ticket.wait_status("resolved")
    await ticket.send("ticket.reopened", body=None)
    await ticket.wait_status("bot")
    await ticket.send("ticket.comment", body="One more question")
    await wait_until(lambda: len(ticket.callbacks("agent")) == 2)
    assert ticket.runs() == 2
