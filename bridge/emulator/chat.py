"""One chat call: store the inputs, let the agent answer from the whole history, record the run.

The agent runs as its own task and stores its messages even if the client goes away mid-stream,
as a server would: a caller that lost the response must find the answer in the history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import HTTPException
from starlette.responses import Response, StreamingResponse

from bridge.emulator.agents import Agent, AgentTurn
from bridge.emulator.faults import FaultPlan
from bridge.emulator.records import ApiUser, message_read
from bridge.emulator.sse import DONE, ERROR_DETAIL, error_event, limited, message_event
from bridge.emulator.state import EmulatorState
from bridge.engage.models import MessageBasic, MessageRead, RunRead

log = logging.getLogger(__name__)


class AgentFailed(Exception):
    """The agent raised, or a fault said it should."""


def pending_user_messages(history: Sequence[MessageRead]) -> list[MessageRead]:
    """The trailing user messages: what the agent answers now (none if the last is not a user's)."""
    pending: list[MessageRead] = []
    for message in reversed(history):
        if message.role != "user":
            break
        pending.append(message)
    return pending[::-1]


class ChatRun:
    """Starts at construction; `outputs()` waits for the answer, `sse()` streams it."""

    # Strong references: the event loop keeps only weak ones to tasks.
    _running: set[asyncio.Task[None]] = set()

    def __init__(
        self,
        state: EmulatorState,
        user: ApiUser,
        conversation_id: str,
        agent: Agent,
        inputs: Sequence[MessageBasic],
        plan: FaultPlan,
    ) -> None:
        self.state, self.user, self.plan, self.agent = state, user, plan, agent
        self.run: RunRead = state.record_run(user, conversation_id, agent.metadata.name)
        self.inputs = state.append_messages(
            conversation_id, inputs, run_id=self.run.id, user_id=user.user_id
        )
        self._events: asyncio.Queue[MessageRead | AgentFailed | None] = asyncio.Queue()
        task = asyncio.create_task(self._drive(), name=f"emulator-run-{self.run.id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _drive(self) -> None:
        try:
            await self._answer()
        except Exception as exc:
            log.warning("emulator agent %s failed", self.agent.metadata.name, exc_info=True)
            self._events.put_nowait(exc if isinstance(exc, AgentFailed) else AgentFailed(str(exc)))
        finally:
            self._events.put_nowait(None)

    async def _answer(self) -> None:
        history = self.state.messages(self.run.conversation_id)
        pending = pending_user_messages(history)
        if not pending:
            return
        if self.plan.agent_error:
            raise AgentFailed("injected agent error")
        turn = AgentTurn(
            history=history,
            pending=pending,
            delay=self.plan.agent_delay,
            released=self.plan.answer_gate,
        )
        name = self.agent.metadata.name
        async for produced in self.agent.respond(turn):
            if produced.role == "status":
                # Status messages are only for the live stream; the history never holds them.
                out = [
                    message_read(
                        produced,
                        org_id=self.user.org_id,
                        conversation_id=self.run.conversation_id,
                        run_id=self.run.id,
                        user_id=self.user.user_id,
                        name=name,
                    )
                ]
            else:
                out = self.state.append_messages(
                    self.run.conversation_id,
                    [produced],
                    run_id=self.run.id,
                    user_id=self.user.user_id,
                    name=name,
                )
            for message in out:
                self._events.put_nowait(message)

    async def _produced(self) -> AsyncIterator[MessageRead | AgentFailed]:
        while (item := await self._events.get()) is not None:
            yield item

    async def outputs(self, *, return_inputs: bool) -> list[MessageRead]:
        """Stored outputs (info and agent messages), after the inputs when asked for."""
        outputs: list[MessageRead] = []
        async for item in self._produced():
            if isinstance(item, AgentFailed):
                raise item
            if item.role != "status":
                outputs.append(item)
        return [*self.inputs, *outputs] if return_inputs else outputs

    async def _sse_events(self, return_inputs: bool) -> AsyncIterator[bytes]:
        if return_inputs:
            for message in self.inputs:
                yield message_event(message)
        async for item in self._produced():
            if isinstance(item, AgentFailed):
                yield error_event()
                return
            yield message_event(item)
        yield DONE

    def sse(self, *, return_inputs: bool) -> AsyncIterator[bytes]:
        return limited(self._sse_events(return_inputs), self.plan.break_stream_after)


async def chat_response(
    run: ChatRun, *, stream: bool, return_inputs: bool
) -> Response | list[MessageRead]:
    """SSE when asked to stream, otherwise the messages once the agent is done."""
    if stream:
        return StreamingResponse(
            run.sse(return_inputs=return_inputs),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    try:
        return await run.outputs(return_inputs=return_inputs)
    except AgentFailed as exc:
        raise HTTPException(500, ERROR_DETAIL) from exc


def agent_or_404(state: EmulatorState, name: str) -> Agent:
    agent = state.agent(name)
    if agent is None:
        # Unknown on the real platform; a 404 with a clear detail is the likely answer.
        raise HTTPException(404, f"Agent {name!r} not found")
    return agent


SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Messages, or with stream=true an SSE stream of MessageRead events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
