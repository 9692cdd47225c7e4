"""The playground's agent picker: the agents Engage Smarter offers (GET /v1/agents), cached."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import JSONResponse

from bridge.engage.errors import EngageError
from bridge.engage.models import AgentMetadata

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
"""Agents change rarely; every page load asking Engage Smarter again would cost a request each."""


@runtime_checkable
class AgentCatalog(Protocol):
    """bridge.engage.client.EngageClient fits."""

    async def list_agents(self) -> dict[str, AgentMetadata]: ...


def agent_list(agents: dict[str, AgentMetadata]) -> list[dict[str, str]]:
    ordered = sorted(agents.values(), key=lambda a: (a.title or a.name).lower())
    return [
        {"name": a.name, "title": a.title or a.name, "description": a.description} for a in ordered
    ]


class AgentsApi:
    def __init__(self, catalog: AgentCatalog | None, default_agent: str) -> None:
        self._catalog = catalog
        self._default = default_agent
        self._cached: list[dict[str, str]] | None = None
        self._at = 0.0

    async def list(self, request: Request) -> JSONResponse:
        body: dict[str, Any] = {"default": self._default}
        if self._catalog is None:
            return JSONResponse({**body, "agents": [], "error": "no Engage Smarter client here"})
        if self._cached is None or time.monotonic() - self._at > CACHE_SECONDS:
            try:
                self._cached = agent_list(await self._catalog.list_agents())
            except EngageError as exc:
                log.warning("could not list the agents: %s", type(exc).__name__)
                return JSONResponse({**body, "error": "could not list the agents"}, 502)
            self._at = time.monotonic()
        return JSONResponse({**body, "agents": self._cached})
