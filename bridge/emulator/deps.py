"""Request dependencies shared by the routers: the state, the authenticated caller, paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import APIKeyHeader

from bridge.emulator.records import ApiUser, ConversationRecord
from bridge.emulator.state import EmulatorState

# The real maximum is unknown; 100 bounds response sizes and matches common FastAPI practice.
MAX_LIMIT = 100

T = TypeVar("T")

# Declared for the OpenAPI document (so schema-driven tools know about them); checked below.
_api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False)
_org_id_header = APIKeyHeader(name="X-Org-Id", auto_error=False)


async def get_state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


StateDep = Annotated[EmulatorState, Depends(get_state)]


async def get_caller(
    state: StateDep,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    org_id: Annotated[str | None, Depends(_org_id_header)],
) -> ApiUser:
    """401 for a missing or unknown key, 403 when the org is not the key's organisation."""
    if not api_key:
        raise HTTPException(401, "Missing X-Api-Key header")
    user = state.user_for_key(api_key)
    if user is None:
        raise HTTPException(401, "Invalid API key")
    if org_id != user.org_id:
        raise HTTPException(403, "This API key has no access to the organisation in X-Org-Id")
    return user


CallerDep = Annotated[ApiUser, Depends(get_caller)]


@dataclass(frozen=True, slots=True)
class Page:
    reversed: bool
    limit: int
    offset: int

    def apply(self, items: Sequence[T]) -> list[T]:
        """`items` come oldest first; reversed=true (the default) serves newest first."""
        ordered = list(items)[::-1] if self.reversed else list(items)
        return ordered[self.offset : self.offset + self.limit]


async def get_page(
    reversed_: Annotated[
        bool, Query(alias="reversed", description="true: newest first (default)")
    ] = True,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    return Page(reversed=reversed_, limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(get_page)]


def visible_conversation(
    state: EmulatorState, caller: ApiUser, conversation_id: str
) -> ConversationRecord:
    """404 for unknown ids and for conversations of other organisations alike."""
    record = state.conversation(conversation_id, caller.org_id)
    if record is None:
        raise HTTPException(404, f"Conversation {conversation_id} not found")
    return record
