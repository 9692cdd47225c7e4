"""/_emulator/: test controls (faults, reset, counts); only when enabled, never for browsers."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from bridge.emulator.deps import StateDep
from bridge.emulator.faults import Faults

# What a browser may send cross-site without a CORS preflight.
_SIMPLE_FORM_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)


async def not_from_a_browser_page(request: Request) -> None:
    """Test code calls these; a web page must not (a cross-site form POST once wiped the data).

    Browsers send `Origin` on cross-site POSTs and `Sec-Fetch-Site` on every request; test
    clients send neither.
    """
    site = request.headers.get("sec-fetch-site", "none")
    if "origin" in request.headers or site not in ("none", "same-origin"):
        raise HTTPException(403, "the emulator's test controls do not take browser requests")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _SIMPLE_FORM_TYPES:
        raise HTTPException(415, "send JSON (application/json) or no body")


router = APIRouter(
    prefix="/_emulator", include_in_schema=False, dependencies=[Depends(not_from_a_browser_page)]
)


def _faults(request: Request) -> Faults:
    faults: Faults = request.app.state.faults
    return faults


def _public(faults: Faults) -> dict[str, Any]:
    return {f.name: getattr(faults, f.name) for f in dataclasses.fields(faults) if f.init}


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return _public(_faults(request))


@router.put("/faults")
async def set_faults(
    request: Request, changes: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Change the given fields only, e.g. `{"scope": "chat", "fail_next": 2}`."""
    faults = _faults(request)
    try:
        faults.update(changes)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _public(faults)


@router.delete("/faults")
async def reset_faults(request: Request) -> dict[str, Any]:
    faults = _faults(request)
    faults.reset()
    return _public(faults)


@router.post("/reset")
async def reset(request: Request, state: StateDep) -> dict[str, bool]:
    """Forget all data and faults: a fresh emulator without a restart."""
    state.reset()
    _faults(request).reset()
    return {"success": True}


@router.get("/state")
async def counts(state: StateDep) -> dict[str, int]:
    conversations = state.find_conversations(lambda c: True)
    return {
        "conversations": len(conversations),
        "messages": sum(len(c.messages) for c in conversations),
        "runs": len(state.find_runs(lambda r: True)),
    }


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(state: StateDep, conversation_id: str) -> dict[str, bool]:
    """The public API has no delete; this imitates retention or an admin removing one."""
    if not state.delete_conversation(conversation_id):
        raise HTTPException(404, f"Conversation {conversation_id} not found")
    return {"success": True}
