"""/v1/conversations: the stateful Conversations API (all 17 endpoints of the contract)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from bridge.emulator.chat import SSE_RESPONSE, ChatRun, agent_or_404, chat_response
from bridge.emulator.deps import CallerDep, PageDep, StateDep, visible_conversation
from bridge.emulator.faults import plan_for
from bridge.emulator.ids import new_id
from bridge.emulator.records import ApiUser, ConversationRecord
from bridge.emulator.state import EmulatorState
from bridge.engage.models import (
    ChatRequest,
    ConversationCreate,
    ConversationRead,
    ConversationReadFull,
    ConversationUpdate,
    FeedbackRead,
    MessageBasic,
    MessageRead,
    RunRead,
    TagRead,
)

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

TagFilter = Annotated[str | None, Query()]


def full(state: EmulatorState, record: ConversationRecord, caller: ApiUser) -> ConversationReadFull:
    return record.to_full(state.tags_of(record.tag_ids), caller.user_id)


def tag_or_404(state: EmulatorState, caller: ApiUser, tag_id: str) -> str:
    if state.tag(tag_id, caller.org_id) is None:
        raise HTTPException(404, f"Tag {tag_id} not found")
    return tag_id


# Literal routes first: `me`, `org`, `saved` and `clone` must never be taken for an id.


@router.post("")
async def create_conversation(
    state: StateDep, caller: CallerDep, body: ConversationCreate | None = None
) -> ConversationReadFull:
    body = body or ConversationCreate()
    record = state.create_conversation(caller, data=body.data, source=body.source)
    return full(state, record, caller)


@router.post("/clone")
async def clone_conversation(
    state: StateDep,
    caller: CallerDep,
    message_id: Annotated[str, Query()],
    body: ConversationUpdate | None = None,
) -> ConversationReadFull:
    message = state.find_message(message_id, caller.org_id)
    if message is None:
        raise HTTPException(404, f"Message {message_id} not found")
    body = body or ConversationUpdate()
    clone = state.clone_conversation(message, caller, data=body.data, source=body.source)
    return full(state, clone, caller)


@router.get("/me")
async def search_own(
    state: StateDep, caller: CallerDep, page: PageDep, tag_id: TagFilter = None
) -> list[ConversationRead]:
    found = state.find_conversations(
        lambda c: (
            c.org_id == caller.org_id
            and c.user_id == caller.user_id
            and (tag_id is None or tag_id in c.tag_ids)
        )
    )
    return [c.to_read() for c in page.apply(found)]


@router.get("/org")
async def search_org(
    state: StateDep, caller: CallerDep, page: PageDep, tag_id: TagFilter = None
) -> list[ConversationRead]:
    found = state.find_conversations(
        lambda c: c.org_id == caller.org_id and (tag_id is None or tag_id in c.tag_ids)
    )
    return [c.to_read() for c in page.apply(found)]


@router.get("/saved")
async def search_saved(state: StateDep, caller: CallerDep, page: PageDep) -> list[ConversationRead]:
    found = state.find_conversations(
        lambda c: c.org_id == caller.org_id and caller.user_id in c.saved_by
    )
    return [c.to_read() for c in page.apply(found)]


@router.get("/{conversation_id}")
async def get_conversation(
    state: StateDep, caller: CallerDep, conversation_id: str
) -> ConversationReadFull:
    return full(state, visible_conversation(state, caller, conversation_id), caller)


@router.patch("/{conversation_id}")
async def update_conversation(
    state: StateDep,
    caller: CallerDep,
    conversation_id: str,
    body: ConversationUpdate | None = None,
) -> ConversationReadFull:
    """Null fields (or no body) leave the conversation unchanged."""
    record = visible_conversation(state, caller, conversation_id)
    body = body or ConversationUpdate()
    state.update_conversation(record.id, data=body.data, source=body.source)
    return full(state, record, caller)


@router.post("/{conversation_id}/saved")
async def save(state: StateDep, caller: CallerDep, conversation_id: str) -> ConversationReadFull:
    record = visible_conversation(state, caller, conversation_id)
    state.set_saved(record.id, caller.user_id, saved=True)
    return full(state, record, caller)


@router.delete("/{conversation_id}/saved")
async def unsave(state: StateDep, caller: CallerDep, conversation_id: str) -> ConversationReadFull:
    record = visible_conversation(state, caller, conversation_id)
    state.set_saved(record.id, caller.user_id, saved=False)
    return full(state, record, caller)


@router.post("/{conversation_id}/messages")
async def add_messages(
    state: StateDep, caller: CallerDep, conversation_id: str, body: list[MessageBasic]
) -> list[MessageRead]:
    """Adds to the history without an agent reply; no run is recorded for it."""
    record = visible_conversation(state, caller, conversation_id)
    return state.append_messages(record.id, body, run_id=new_id(), user_id=caller.user_id)


@router.get("/{conversation_id}/messages")
async def get_messages(
    state: StateDep, caller: CallerDep, conversation_id: str
) -> list[MessageRead]:
    """The full history, oldest first."""
    return state.messages(visible_conversation(state, caller, conversation_id).id)


@router.get("/{conversation_id}/feedback")
async def get_feedback(
    state: StateDep, caller: CallerDep, conversation_id: str
) -> list[FeedbackRead]:
    record = visible_conversation(state, caller, conversation_id)
    return state.feedback_where(lambda f: f.conversation_id == record.id)


@router.get("/{conversation_id}/runs")
async def get_runs(state: StateDep, caller: CallerDep, conversation_id: str) -> list[RunRead]:
    return state.runs_for(visible_conversation(state, caller, conversation_id).id)


@router.get("/{conversation_id}/tags")
async def get_tags(state: StateDep, caller: CallerDep, conversation_id: str) -> list[TagRead]:
    return state.tags_of(visible_conversation(state, caller, conversation_id).tag_ids)


@router.post("/{conversation_id}/tags/{tag_id}")
async def add_tag(
    state: StateDep, caller: CallerDep, conversation_id: str, tag_id: str
) -> list[TagRead]:
    record = visible_conversation(state, caller, conversation_id)
    return state.set_tagged(record, tag_or_404(state, caller, tag_id), tagged=True)


@router.delete("/{conversation_id}/tags/{tag_id}")
async def remove_tag(
    state: StateDep, caller: CallerDep, conversation_id: str, tag_id: str
) -> list[TagRead]:
    record = visible_conversation(state, caller, conversation_id)
    return state.set_tagged(record, tag_or_404(state, caller, tag_id), tagged=False)


@router.post("/{conversation_id}/chat", response_model=list[MessageRead], responses=SSE_RESPONSE)
async def chat(
    request: Request,
    state: StateDep,
    caller: CallerDep,
    conversation_id: str,
    agent: Annotated[str, Query()],
    body: ChatRequest | None = None,
    return_inputs: bool = False,
    stream: bool = False,
) -> Any:
    """Append the messages, then the agent answers from the whole history (if a user spoke last)."""
    record = visible_conversation(state, caller, conversation_id)
    chosen = agent_or_404(state, agent)
    messages = body.messages if body is not None else []
    run = ChatRun(state, caller, record.id, chosen, messages, plan_for(request))
    return await chat_response(run, stream=stream, return_inputs=return_inputs)
