"""Async client for the Engage Smarter API (STUB: signatures only, being implemented)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from bridge.engage.models import (
    AgentMetadata,
    ConversationRead,
    ConversationReadFull,
    MessageBasic,
    MessageRead,
)


class EngageClient:
    """One pooled `httpx.AsyncClient`, injected or owned; `aclose()` when done."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        org_id: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 120.0,
        max_attempts: int = 4,
    ) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def validate_me(self) -> bool:
        raise NotImplementedError

    async def list_agents(self) -> dict[str, AgentMetadata]:
        raise NotImplementedError

    async def validate_agent(self, agent: str) -> bool:
        raise NotImplementedError

    async def create_conversation(
        self, *, data: dict[str, Any] | None = None, source: str = ""
    ) -> ConversationReadFull:
        raise NotImplementedError

    async def get_conversation(self, conversation_id: str) -> ConversationReadFull:
        raise NotImplementedError

    async def update_conversation(
        self,
        conversation_id: str,
        *,
        data: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> ConversationReadFull:
        raise NotImplementedError

    async def search_own_conversations(
        self, *, limit: int = 20, offset: int = 0, reversed: bool = True, tag_id: str | None = None
    ) -> list[ConversationRead]:
        raise NotImplementedError

    async def add_messages(
        self, conversation_id: str, messages: Sequence[MessageBasic]
    ) -> list[MessageRead]:
        raise NotImplementedError

    async def get_messages(self, conversation_id: str) -> list[MessageRead]:
        raise NotImplementedError

    async def chat(
        self,
        conversation_id: str,
        messages: Sequence[MessageBasic],
        *,
        agent: str,
        return_inputs: bool = False,
    ) -> list[MessageRead]:
        raise NotImplementedError

    def chat_stream(
        self,
        conversation_id: str,
        messages: Sequence[MessageBasic],
        *,
        agent: str,
        return_inputs: bool = False,
    ) -> AsyncIterator[MessageRead]:
        raise NotImplementedError
