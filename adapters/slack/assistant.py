"""Slack AI-app threads: suggested prompts and a title on start; the viewed channel as context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from slack_sdk.errors import SlackApiError

from adapters.slack.apierrors import error_code
from adapters.slack.clients import Clients
from bridge.config import Routing
from bridge.engage.errors import EngageError
from bridge.engage.models import AgentMetadata, ConversationReadFull
from bridge.errors import StorageUnavailable
from bridge.inbox import storage
from bridge.models import ThreadKey
from bridge.store import Namespace
from bridge.threadmap import ThreadMap

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]

PLATFORM = "slack"
MAX_PROMPTS = 4  # assistant.threads.setSuggestedPrompts takes at most four
TITLE_LIMIT = 75
# Conversation data fields for the channel the person was looking at when they asked.
CONTEXT_FIELDS = {
    "channel_id": "slack_context_channel_id",
    "team_id": "slack_context_team_id",
    "enterprise_id": "slack_context_enterprise_id",
}
_DEFAULT_PROMPT = "What can you help me with?"
# Where contexts were kept before they were thread facts (up to session 4's store): still read,
# by moving them at start-up, for threads opened before an upgrade and asked after it.
_OLD_CONTEXTS = Namespace(PLATFORM), "assistant-context"


@runtime_checkable
class AgentsAndConversations(Protocol):
    """The Engage calls used here (bridge.engage.client.EngageClient fits)."""

    async def list_agents(self) -> dict[str, AgentMetadata]: ...

    async def get_conversation(self, conversation_id: str) -> ConversationReadFull: ...

    async def update_conversation(
        self, conversation_id: str, *, data: dict[str, Any] | None = None, source: str | None = None
    ) -> ConversationReadFull: ...


@runtime_checkable
class HasEngage(Protocol):
    @property
    def engage(self) -> AgentsAndConversations: ...


def assistant_thread(body: Mapping[str, Any]) -> tuple[ThreadKey, dict[str, str]] | None:
    """The assistant thread of an `assistant_thread_*` event and the context it reports (pure)."""
    event = body.get("event") or {}
    found = event.get("assistant_thread") or {}
    channel, ts = found.get("channel_id"), found.get("thread_ts")
    team = body.get("team_id") or (found.get("context") or {}).get("team_id")
    if not (channel and ts and team):
        return None
    context = found.get("context") or {}
    facts = {CONTEXT_FIELDS[k]: str(v) for k, v in context.items() if k in CONTEXT_FIELDS and v}
    return ThreadKey(PLATFORM, str(team), str(channel), str(ts)), facts


def prompts_for(agent: AgentMetadata | None, configured: Sequence[str]) -> list[dict[str, str]]:
    """Configured prompts, else one built from the agent's own description (pure)."""
    chosen = list(configured[:MAX_PROMPTS])
    if not chosen:
        about = f" ({agent.description})" if agent is not None and agent.description else ""
        return [{"title": _DEFAULT_PROMPT, "message": f"{_DEFAULT_PROMPT}{about}"}]
    return [{"title": _title(p), "message": p} for p in chosen]


def _title(text: str) -> str:
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


class AssistantThreads:
    """Listeners for the split-view assistant; the context is kept with the thread in Redis
    (ThreadMap.note_facts) until the conversation exists (then it is merged into its `data`)."""

    def __init__(
        self, threads: ThreadMap, routing: Routing, prompts: Sequence[str], clients: Clients
    ) -> None:
        self._threads = threads
        self._clients = clients
        self._routing = routing
        self._prompts = list(prompts)
        self._engage: AgentsAndConversations | None = None
        self._adopting: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Move contexts noted before the upgrade to thread facts, in the background."""
        if self._adopting is None:
            self._adopting = asyncio.create_task(self._adopt_old_contexts())

    async def close(self) -> None:
        if self._adopting is not None and not self._adopting.done():
            self._adopting.cancel()
            await asyncio.wait({self._adopting})

    async def _adopt_old_contexts(self) -> None:
        try:
            moved = await self._threads.adopt_facts(*_OLD_CONTEXTS)
        except StorageUnavailable as exc:
            log.warning("slack assistant contexts from before the upgrade not moved: %s", exc)
            return
        if moved:
            log.info("slack: %d assistant thread context(s) moved to thread facts", moved)

    def attach(self, inbox: object) -> None:
        if isinstance(inbox, HasEngage):
            self._engage = inbox.engage

    async def on_started(self, body: dict[str, Any], ack: Ack) -> None:
        await ack()
        found = assistant_thread(body)
        if found is None:
            return
        thread, context = found
        await self._remember(thread, context)
        agent = await self._agent(self._routing.agent_for(thread.workspace, thread.channel))
        title = _title(agent.title) if agent is not None and agent.title else None
        try:
            client = await self._clients.for_team(thread.workspace)
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=thread.channel,
                thread_ts=thread.thread,
                prompts=prompts_for(agent, self._prompts),
                title=title,
            )
            if title:
                await client.assistant_threads_setTitle(
                    channel_id=thread.channel, thread_ts=thread.thread, title=title
                )
        except SlackApiError as exc:
            log.warning("slack assistant thread not set up: %s", error_code(exc))

    async def on_context_changed(self, body: dict[str, Any], ack: Ack) -> None:
        found = assistant_thread(body)
        if found is not None:
            thread, context = found
            await self._remember(thread, context)
            await self._merge_into_conversation(thread, context)
        await ack()

    async def _remember(self, thread: ThreadKey, context: dict[str, str]) -> None:
        """Noted with the thread: its first message's turn creates the conversation with it
        (bridge.store.keys.facts), so the message's own path to Redis stays one round trip."""
        if context:
            await self._threads.note_facts(thread, context)

    async def _merge_into_conversation(self, thread: ThreadKey, context: dict[str, str]) -> None:
        async with storage("thread record"):
            record = await self._threads.get(thread)
        if record is None or self._engage is None or not context:
            return  # recorded above; the first message carries it into the new conversation
        try:
            conversation = await self._engage.get_conversation(record.conversation_id)
            data = {**conversation.data, **context}
            await self._engage.update_conversation(record.conversation_id, data=data)
        except EngageError as exc:
            log.warning("assistant context not recorded: %s", type(exc).__name__)

    async def _agent(self, name: str) -> AgentMetadata | None:
        if self._engage is None:
            return None
        try:
            return (await self._engage.list_agents()).get(name)
        except EngageError as exc:
            log.info("agent metadata not read: %s", type(exc).__name__)
            return None
