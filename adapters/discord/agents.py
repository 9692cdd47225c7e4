"""Agent names for the `/agent` command's autocomplete: the platform's list, cached briefly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from bridge.engage.errors import EngageError
from bridge.engage.models import AgentMetadata
from bridge.feedback import FeedbackApi

log = logging.getLogger(__name__)

# Autocomplete is typed letter by letter: one platform call a minute is plenty.
CACHE_SECONDS = 60.0
# Discord drops an autocomplete answer after 3 s; answer from what is known before that.
FETCH_SECONDS = 2.0
MAX_CHOICES = 25
MAX_CHOICE_CHARS = 100


class AgentLister(Protocol):
    async def list_agents(self) -> dict[str, AgentMetadata]: ...


class PlatformCalls(AgentLister, FeedbackApi, Protocol):
    """The Engage Smarter calls the Discord adapter makes itself (EngageClient fits)."""


@runtime_checkable
class HasEngage(Protocol):
    """The core's inbox (`bridge.core.Bridge`) carries the Engage Smarter client."""

    @property
    def engage(self) -> PlatformCalls: ...


def label(name: str, title: str) -> str:
    text = f"{title} ({name})" if title and title != name else name
    return text if len(text) <= MAX_CHOICE_CHARS else text[: MAX_CHOICE_CHARS - 1] + "…"


def choices(agents: Mapping[str, str], typed: str) -> list[tuple[str, str]]:
    """(label, agent name) pairs matching what was typed: name prefixes first, then any match."""
    typed = typed.strip().lower()
    fits = [n for n in agents if len(n) <= MAX_CHOICE_CHARS]
    first = sorted(n for n in fits if n.lower().startswith(typed))
    rest = sorted(
        n for n in fits if n not in first and (typed in n.lower() or typed in agents[n].lower())
    )
    return [(label(n, agents[n]), n) for n in [*first, *rest][:MAX_CHOICES]]


class AgentNames:
    """The configured agents, plus whatever the platform lists (refreshed every minute)."""

    def __init__(self, configured: Iterable[str]) -> None:
        self._configured = dict.fromkeys(configured, "")
        self._listed: dict[str, str] = {}
        self._fetched_at = float("-inf")

    async def known(self, source: AgentLister | None) -> dict[str, str]:
        """Agent name -> title; never raises (a failed refresh keeps the last list)."""
        if source is not None and time.monotonic() - self._fetched_at > CACHE_SECONDS:
            self._fetched_at = time.monotonic()
            try:
                async with asyncio.timeout(FETCH_SECONDS):
                    listed = await source.list_agents()
                self._listed = {m.name: m.title for m in listed.values()}
            except (EngageError, TimeoutError) as exc:
                log.info("discord: agent list not refreshed: %s", exc)
        return {**self._configured, **self._listed}
