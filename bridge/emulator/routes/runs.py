"""/v1/runs: the stateless API (full history in, a new conversation behind it) and feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from bridge.emulator.chat import SSE_RESPONSE, ChatRun, agent_or_404, chat_response
from bridge.emulator.deps import CallerDep, PageDep, StateDep
from bridge.emulator.faults import plan_for
from bridge.emulator.records import ApiUser, RunRecord
from bridge.emulator.routes.conversations import tag_or_404
from bridge.emulator.state import EmulatorState
from bridge.engage.models import (
    FeedbackRead,
    FeedbackUpsert,
    MessageBasic,
    MessageRead,
    Role,
    RunRead,
    TagRead,
)

router = APIRouter(prefix="/v1/runs", tags=["runs"])


class RunMessage(BaseModel):
    """A history message; the SDK may send whole MessageRead dumps, so extra fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str
    name: str | None = None


class RunChatBody(BaseModel):
    messages: list[RunMessage] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


def run_or_404(state: EmulatorState, caller: ApiUser, run_id: str) -> RunRecord:
    record = state.run(run_id, caller.org_id)
    if record is None:
        raise HTTPException(404, f"Run {run_id} not found")
    return record


@router.post("/chat", response_model=list[MessageRead], responses=SSE_RESPONSE)
async def run_chat(
    request: Request,
    state: StateDep,
    caller: CallerDep,
    agent: Annotated[str, Query()],
    body: RunChatBody | None = None,
    return_inputs: bool = False,
    stream: bool = False,
) -> Any:
    """A new conversation (holding `data`) with the posted history; the agent answers it."""
    chosen = agent_or_404(state, agent)
    body = body or RunChatBody()
    conversation = state.create_conversation(caller, data=body.data, source="")
    history = [MessageBasic(role=m.role, content=m.content, name=m.name) for m in body.messages]
    run = ChatRun(state, caller, conversation.id, chosen, history, plan_for(request))
    return await chat_response(run, stream=stream, return_inputs=return_inputs)


@router.get("/me")
async def my_runs(
    state: StateDep,
    caller: CallerDep,
    page: PageDep,
    tag_id: Annotated[str | None, Query()] = None,
    agent: Annotated[str | None, Query()] = None,
) -> list[RunRead]:
    found = state.find_runs(
        lambda r: (
            r.read.org_id == caller.org_id
            and r.user_id == caller.user_id
            and (tag_id is None or tag_id in r.tag_ids)
            and (agent is None or r.read.agent == agent)
        )
    )
    return [r.read for r in page.apply(found)]


@router.get("/{run_id}")
async def get_run(state: StateDep, caller: CallerDep, run_id: str) -> RunRead:
    return run_or_404(state, caller, run_id).read


@router.get("/{run_id}/messages")
async def get_run_messages(state: StateDep, caller: CallerDep, run_id: str) -> list[MessageRead]:
    return state.run_messages(run_or_404(state, caller, run_id).read.id)


@router.get("/{run_id}/feedback")
async def get_run_feedback(state: StateDep, caller: CallerDep, run_id: str) -> list[FeedbackRead]:
    run = run_or_404(state, caller, run_id).read
    return state.feedback_where(lambda f: f.run_id == run.id)


@router.post("/{run_id}/feedback")
async def upsert_run_feedback(
    state: StateDep, caller: CallerDep, run_id: str, body: FeedbackUpsert | None = None
) -> FeedbackRead:
    """An upsert per (run, user): fields left null keep their stored value."""
    run = run_or_404(state, caller, run_id).read
    return state.upsert_feedback(run, caller.user_id, body or FeedbackUpsert())


@router.get("/{run_id}/tags")
async def get_run_tags(state: StateDep, caller: CallerDep, run_id: str) -> list[TagRead]:
    return state.tags_of(run_or_404(state, caller, run_id).tag_ids)


@router.post("/{run_id}/tags/{tag_id}")
async def add_run_tag(
    state: StateDep, caller: CallerDep, run_id: str, tag_id: str
) -> list[TagRead]:
    record = run_or_404(state, caller, run_id)
    return state.set_tagged(record, tag_or_404(state, caller, tag_id), tagged=True)


@router.delete("/{run_id}/tags/{tag_id}")
async def remove_run_tag(
    state: StateDep, caller: CallerDep, run_id: str, tag_id: str
) -> list[TagRead]:
    record = run_or_404(state, caller, run_id)
    return state.set_tagged(record, tag_or_404(state, caller, tag_id), tagged=False)
