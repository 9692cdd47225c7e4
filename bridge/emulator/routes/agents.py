"""/v1/users and /v1/agents: credential check, the agents map and agent validation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bridge.emulator.deps import CallerDep, StateDep
from bridge.engage.models import AgentMetadata, AgentStatus, Success

router = APIRouter(prefix="/v1")


@router.post("/users/validate-me", tags=["users"])
async def validate_me(caller: CallerDep) -> Success:
    return Success(success=True)


@router.get("/agents", tags=["agents"])
async def list_agents(state: StateDep, caller: CallerDep) -> dict[str, AgentMetadata]:
    """An object map keyed by agent name (not a list), as the platform answers."""
    return {name: agent.metadata for name, agent in state.agent_map().items()}


@router.get("/agents/validate", tags=["agents"])
async def validate_agent(
    state: StateDep, caller: CallerDep, agent: Annotated[str, Query()]
) -> AgentStatus:
    return AgentStatus(status="active" if state.agent(agent) is not None else "fail")
