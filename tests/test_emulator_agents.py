"""The emulator's demo agent pauses after its status lines so people see them; others do not."""

from __future__ import annotations

import pytest

from bridge.emulator import agents
from bridge.emulator.agents import DEMO_STATUS_PAUSE_SECONDS, AgentTurn, builtin_agents


async def streamed(name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the agent yields, with its sleeps recorded in order instead of waited for."""
    events: list[str] = []

    async def sleep(seconds: float) -> None:
        if seconds:
            events.append(f"pause {seconds}")

    monkeypatch.setattr(agents.asyncio, "sleep", sleep)
    agent = builtin_agents()[name]
    async for message in agent.respond(AgentTurn(history=[], pending=[])):
        events.append(message.role)
    return events


async def test_the_demo_agent_pauses_after_each_status_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pause = f"pause {DEMO_STATUS_PAUSE_SECONDS}"
    assert await streamed("pensions-questions-latest", monkeypatch) == [
        "status",
        pause,
        "status",
        pause,
        "agent",
    ]
    assert 0 < DEMO_STATUS_PAUSE_SECONDS <= 1


@pytest.mark.parametrize("name", ["parrot", "parrot-twice", "inspector"])
async def test_the_other_agents_answer_without_a_pause(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not [e for e in await streamed(name, monkeypatch) if e.startswith("pause")]
