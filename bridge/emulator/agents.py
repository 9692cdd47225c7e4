"""The emulator's built-in agents: deterministic stand-ins that show history and streaming."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.engage.models import (
    AgentMessage,
    AgentMetadata,
    InfoMessage,
    MessageBasic,
    MessageRead,
    StatusMessage,
)

# The demo agent's pause after each status message: the playground polls every 600 ms, so about a
# second of "Reading your question…" / "Looking up pension rules…" is seen at least once. Only
# the demo agent pauses; tests that want speed register PensionsQuestions(status_pause=0).
DEMO_STATUS_PAUSE_SECONDS = 0.6

_NAME = re.compile(r"\bmy name is ([A-Za-zÀ-ÿ'-]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """What an agent sees: the whole stored history (inputs included) and the user messages it
    answers now (the trailing run of user messages)."""

    history: Sequence[MessageRead]
    pending: Sequence[MessageRead]
    delay: float = 0.0
    released: Callable[[], Awaitable[None]] | None = None  # Faults.hold_answers

    async def pause(self, seconds: float = 0.0) -> None:
        """The agent's work before its answer: its own `seconds`, the injected delay, any hold."""
        await asyncio.sleep(seconds + self.delay)
        if self.released is not None:
            await self.released()


class Agent(Protocol):
    """Yields status, info and agent messages in the order a stream would show them."""

    @property
    def metadata(self) -> AgentMetadata: ...

    def respond(self, turn: AgentTurn) -> AsyncIterator[MessageBasic]: ...


def _meta(name: str, title: str, description: str) -> AgentMetadata:
    return AgentMetadata(
        name=name,
        title=title,
        description=description,
        available_all_orgs=True,
        available_org_ids=None,
    )


def joined(pending: Sequence[MessageRead]) -> str:
    """Several pending user messages are answered together, in order."""
    return "\n".join(m.content for m in pending)


class Parrot:
    """The platform's own test agent: `You said: <content>`."""

    metadata = _meta("parrot", "Parrot", "Repeats what you said.")

    async def respond(self, turn: AgentTurn) -> AsyncIterator[MessageBasic]:
        await turn.pause()
        yield AgentMessage(content=f"You said: {joined(turn.pending)}")


class ParrotTwice:
    """Answers with two agent messages, so callers prove they deliver every one."""

    metadata = _meta("parrot-twice", "Parrot, twice", "Repeats what you said in two messages.")

    async def respond(self, turn: AgentTurn) -> AsyncIterator[MessageBasic]:
        await turn.pause()
        yield AgentMessage(content=f"You said: {joined(turn.pending)}")
        yield AgentMessage(content="Anything else?")


def remembered_name(history: Sequence[MessageRead]) -> str | None:
    """The latest name a user gave with 'my name is X'."""
    name = None
    for message in history:
        if message.role == "user" and (match := _NAME.search(message.content)):
            name = match.group(1)
    return name


def pensions_answer(history: Sequence[MessageRead], pending: Sequence[MessageRead]) -> str:
    """Visibly uses the history: counts the agent's turns and remembers the user's name."""
    turn = 1 + sum(1 for m in history if m.role == "agent")
    earlier = history[: len(history) - len(pending)]
    name_before, name_now = remembered_name(earlier), remembered_name(history)
    if name_before:
        greeting = f"Nice to see you again, {name_before}."
    elif name_now:
        greeting = f"Nice to meet you, {name_now}."
    else:
        greeting = "Hello."
    question = joined(pending)
    return (
        f"Turn {turn}. {greeting} About “{question}”: most people can take their pension "
        "from 55 (57 from 2028)."
    )


class PensionsQuestions:
    """The walkthrough's agent: streams status messages first, then a history-aware answer."""

    metadata = _meta(
        "pensions-questions-latest",
        "Pensions questions",
        "Answers pension questions and remembers the conversation.",
    )

    def __init__(self, status_pause: float = DEMO_STATUS_PAUSE_SECONDS) -> None:
        self.status_pause = status_pause

    async def respond(self, turn: AgentTurn) -> AsyncIterator[MessageBasic]:
        yield StatusMessage(content="Reading your question…")
        await asyncio.sleep(self.status_pause)
        yield StatusMessage(content="Looking up pension rules…")
        await turn.pause(self.status_pause)
        yield AgentMessage(content=pensions_answer(turn.history, turn.pending))


class Slow:
    """Takes `seconds` (settable) before answering like parrot; for timeout and status tests."""

    metadata = _meta("slow", "Slow parrot", "Repeats what you said, slowly.")

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    async def respond(self, turn: AgentTurn) -> AsyncIterator[MessageBasic]:
        yield StatusMessage(content="Thinking slowly…")
        await turn.pause(self.seconds)
        yield AgentMessage(content=f"You said: {joined(turn.pending)}")


class Inspector:
    """Emits an info message (never for end users) before its answer."""

    metadata = _meta("inspector", "Inspector", "Emits an info message, then answers.")

    async def respond(self, turn: AgentTurn) -> AsyncIterator[MessageBasic]:
        yield InfoMessage(content=f"internal: {len(turn.history)} messages in history")
        await turn.pause()
        yield AgentMessage(content=f"Inspected: {joined(turn.pending)}")


def builtin_agents() -> dict[str, Agent]:
    agents: list[Agent] = [Parrot(), ParrotTwice(), PensionsQuestions(), Slow(), Inspector()]
    return {agent.metadata.name: agent for agent in agents}
