"""/_emulator/: test controls (faults, reset, counts); hidden from the OpenAPI document."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request

from bridge.emulator.deps import StateDep
from bridge.emulator.faults import Faults

router = APIRouter(prefix="/_emulator", include_in_schema=False)


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
