"""/v1/tags: an organisation's tags and what they are attached to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from bridge.emulator.deps import CallerDep, PageDep, StateDep
from bridge.emulator.records import ApiUser
from bridge.emulator.state import EmulatorState
from bridge.engage.models import ConversationRead, RunRead, Success, TagCreate, TagRead, TagUpdate

router = APIRouter(prefix="/v1/tags", tags=["tags"])


def tag_or_404(state: EmulatorState, caller: ApiUser, tag_id: str) -> TagRead:
    tag = state.tag(tag_id, caller.org_id)
    if tag is None:
        raise HTTPException(404, f"Tag {tag_id} not found")
    return tag


@router.get("")
async def search_tags(
    state: StateDep, caller: CallerDep, page: PageDep, search: Annotated[str, Query()] = ""
) -> list[TagRead]:
    """Tags whose name or description contains `search` (case-insensitive)."""
    needle = search.casefold()
    found = [
        t
        for t in state.tags_in(caller.org_id)
        if needle in t.name.casefold() or needle in t.description.casefold()
    ]
    return page.apply(found)


@router.post("")
async def create_tag(state: StateDep, caller: CallerDep, body: TagCreate) -> TagRead:
    tag = state.create_tag(caller.org_id, body.name, body.description)
    if tag is None:
        raise HTTPException(409, f"A tag named {body.name!r} already exists")
    return tag


@router.get("/{tag_id}")
async def get_tag(state: StateDep, caller: CallerDep, tag_id: str) -> TagRead:
    return tag_or_404(state, caller, tag_id)


@router.patch("/{tag_id}")
async def update_tag(
    state: StateDep, caller: CallerDep, tag_id: str, body: TagUpdate | None = None
) -> TagRead:
    """Only the description changes; null leaves it as it is."""
    tag = tag_or_404(state, caller, tag_id)
    return state.update_tag(tag.id, (body or TagUpdate()).description)


@router.delete("/{tag_id}")
async def delete_tag(state: StateDep, caller: CallerDep, tag_id: str) -> Success:
    state.delete_tag(tag_or_404(state, caller, tag_id).id)
    return Success(success=True)


@router.get("/{tag_id}/conversations")
async def tagged_conversations(
    state: StateDep, caller: CallerDep, page: PageDep, tag_id: str
) -> list[ConversationRead]:
    tag = tag_or_404(state, caller, tag_id)
    found = state.find_conversations(lambda c: tag.id in c.tag_ids)
    return [c.to_read() for c in page.apply(found)]


@router.get("/{tag_id}/runs")
async def tagged_runs(
    state: StateDep, caller: CallerDep, page: PageDep, tag_id: str
) -> list[RunRead]:
    tag = tag_or_404(state, caller, tag_id)
    return [r.read for r in page.apply(state.find_runs(lambda r: tag.id in r.tag_ids))]
