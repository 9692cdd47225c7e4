"""Async client for the Engage Smarter API: every endpoint, pooled, retried only where safe.

Repeating a request is safe for reads and idempotent writes (PATCH metadata, save/unsave, tag
add/remove, validate): those are retried on transport errors, 429 and 5xx. Creating a
conversation, adding messages and chatting are repeated only when the request provably never
reached the server (connect error, connect or pool timeout) or the server refused it (429).
After a read timeout, a 5xx or a chat stream that broke mid-way the client raises
`OutcomeUnknown` (`ChatOutcomeUnknown` for chat) instead: the server may have acted.

How the core reconciles a `ChatOutcomeUnknown` (or an `EngageStreamError`): it reads the
conversation history (`get_messages`). If the user messages it sent are there and an agent
message follows them, that is the answer; if they are there without an answer, it calls
`chat(cid, [], agent=...)` (an empty list: the agent answers when the newest stored message is a
user message) so the messages are never stored twice; if they are missing it sends them again.
An `OutcomeUnknown` from `create_conversation` is likewise not retried here: the conversation
may exist; the caller may look for it by `data` among `search_own_conversations()` or create
another (an empty orphan conversation is harmless).

This client is the one layer that repeats an Engage Smarter request (`agent_attempts` tries
per request, `bridge.backoff` between them): only it knows whether a request is idempotent and
whether it was sent, so only it can repeat without doing anything twice. The core never
repeats a call that failed with a final error (it parks the batch and apologises); it acts
again only on an unknown outcome, after reading the history (bridge/chat.py). Before, both
layers retried 5xx: 4 x 4 = 16 calls before an apology.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from bridge.config import Settings
from bridge.engage.aiohttp_transport import AiohttpTransport
from bridge.engage.errors import ChatOutcomeUnknown, EngageProtocolError
from bridge.engage.lean import Lean
from bridge.engage.models import (
    AgentMetadata,
    AgentStatus,
    ChatRequest,
    ConversationCreate,
    ConversationRead,
    ConversationReadFull,
    ConversationUpdate,
    FeedbackRead,
    MessageBasic,
    MessageRead,
    RunRead,
    Success,
    TagRead,
)
from bridge.engage.retry import OnRetry, RetryPolicy, Safety
from bridge.engage.runs import RunsMixin
from bridge.engage.tags import TagsMixin
from bridge.engage.transport import (
    EngageHttp,
    OwnedHttp,
    Sleep,
    chat_params,
    page,
    parse_list,
    parse_one,
    path_of,
)
from bridge.errors import ConfigError

DEFAULT_API_URL = "https://api.engagesmarter.ai"
GET, SAFE, ONCE = "GET", Safety.IDEMPOTENT, Safety.UNSENT_ONLY
_SPARE_CONNECTIONS = 16


def default_timeout(seconds: float) -> httpx.Timeout:
    """`seconds` for reading an answer (agents can be slow); connecting should be quick."""
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


class EngageClient(RunsMixin, TagsMixin):
    """One pooled `httpx.AsyncClient`, injected or owned; `aclose()` when done.

    An owned client sends through `AiohttpTransport` (a quarter of the CPU of httpx's own
    async transport, same exceptions), most requests without httpx's client layers
    (`bridge/engage/lean.py`), unless `transport` is given (e.g. an in-process
    `httpx.ASGITransport`, or `httpx.AsyncHTTPTransport()` for httpcore).
    `retry` overrides `max_attempts`; `on_retry` is called before every repeated attempt (the
    core counts them); `sleep` is the backoff's wait, replaceable in tests.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        org_id: str | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 120.0,
        max_attempts: int = 4,
        max_connections: int = 100,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not api_key or not org_id:
            raise ConfigError("the Engage Smarter client needs an API key and an org id")
        self._owns_http = http is None
        headers = {"X-Api-Key": api_key, "X-Org-Id": org_id}
        lean = None
        if http is None:
            limits = httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
            transport = transport or AiohttpTransport(limits=limits)
            http = OwnedHttp(
                transport=transport,
                timeout=default_timeout(timeout),
                limits=limits,
                headers=headers,
            )
            lean = Lean.over(http, transport)
        self._http_client = http
        self._lean = lean
        self._http = EngageHttp(
            base_url=base_url or DEFAULT_API_URL,
            headers=headers,
            http=http,
            retry=retry or RetryPolicy(max_attempts=max_attempts),
            on_retry=on_retry,
            sleep=sleep,
            lean=lean,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        org_id: str | None = None,
        **kwargs: Any,
    ) -> EngageClient:
        """A client configured from `Settings`; explicit arguments win (e.g. the emulator's)."""
        key = settings.engage_api_key.get_secret_value() if settings.engage_api_key else None
        # Every turn in flight holds at most one agent call; the rest are short lookups.
        kwargs.setdefault("max_connections", settings.worker_concurrency + _SPARE_CONNECTIONS)
        kwargs.setdefault("retry", retry_policy(settings))
        return cls(
            base_url=base_url or settings.engage_api_url,
            api_key=api_key or key,
            org_id=org_id or settings.engage_org_id,
            timeout=settings.engage_timeout_seconds,
            **kwargs,
        )

    async def aclose(self) -> None:
        if self._lean is not None:
            self._lean.close()
        if self._owns_http:
            await self._http_client.aclose()

    async def __aenter__(self) -> EngageClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # Users and agents

    async def validate_me(self) -> bool:
        payload = await self._http.request("POST", "/v1/users/validate-me", safety=SAFE)
        return parse_one(Success, payload).success

    async def list_agents(self) -> dict[str, AgentMetadata]:
        payload = await self._http.request(GET, "/v1/agents", safety=SAFE)
        if not isinstance(payload, dict):
            raise EngageProtocolError(f"expected an object of agents, got {type(payload).__name__}")
        return {name: parse_one(AgentMetadata, agent) for name, agent in payload.items()}

    async def validate_agent(self, agent: str) -> bool:
        payload = await self._http.request(
            GET, "/v1/agents/validate", safety=SAFE, params={"agent": agent}
        )
        return parse_one(AgentStatus, payload).status == "active"

    # Conversations

    async def create_conversation(
        self, *, data: dict[str, Any] | None = None, source: str = ""
    ) -> ConversationReadFull:
        body = ConversationCreate(data=data or {}, source=source).model_dump(mode="json")
        payload = await self._http.request("POST", "/v1/conversations", safety=ONCE, body=body)
        return parse_one(ConversationReadFull, payload)

    async def clone_conversation(
        self, message_id: str, *, data: dict[str, Any] | None = None, source: str | None = None
    ) -> ConversationReadFull:
        """A new conversation holding the history up to `message_id`."""
        payload = await self._http.request(
            "POST",
            "/v1/conversations/clone",
            safety=ONCE,
            params={"message_id": message_id},
            body=ConversationUpdate(data=data, source=source).model_dump(mode="json"),
        )
        return parse_one(ConversationReadFull, payload)

    async def search_own_conversations(
        self, *, limit: int = 20, offset: int = 0, reversed: bool = True, tag_id: str | None = None
    ) -> list[ConversationRead]:
        params = page(limit, offset, reversed, tag_id=tag_id)
        payload = await self._http.request(GET, "/v1/conversations/me", safety=SAFE, params=params)
        return parse_list(ConversationRead, payload)

    async def search_org_conversations(
        self, *, limit: int = 20, offset: int = 0, reversed: bool = True, tag_id: str | None = None
    ) -> list[ConversationRead]:
        params = page(limit, offset, reversed, tag_id=tag_id)
        payload = await self._http.request(GET, "/v1/conversations/org", safety=SAFE, params=params)
        return parse_list(ConversationRead, payload)

    async def search_saved_conversations(
        self, *, limit: int = 20, offset: int = 0, reversed: bool = True
    ) -> list[ConversationRead]:
        params = page(limit, offset, reversed)
        path = "/v1/conversations/saved"
        return parse_list(
            ConversationRead, await self._http.request(GET, path, safety=SAFE, params=params)
        )

    async def get_conversation(self, conversation_id: str) -> ConversationReadFull:
        payload = await self._http.request(GET, _conv(conversation_id), safety=SAFE)
        return parse_one(ConversationReadFull, payload)

    async def update_conversation(
        self,
        conversation_id: str,
        *,
        data: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> ConversationReadFull:
        """Replace `data` and/or `source`; a `None` leaves that field as it is."""
        body = ConversationUpdate(data=data, source=source).model_dump(mode="json")
        payload = await self._http.request("PATCH", _conv(conversation_id), safety=SAFE, body=body)
        return parse_one(ConversationReadFull, payload)

    async def save_conversation(self, conversation_id: str) -> ConversationReadFull:
        path = _conv(conversation_id, "saved")
        return parse_one(ConversationReadFull, await self._http.request("POST", path, safety=SAFE))

    async def unsave_conversation(self, conversation_id: str) -> ConversationReadFull:
        path = _conv(conversation_id, "saved")
        payload = await self._http.request("DELETE", path, safety=SAFE)
        return parse_one(ConversationReadFull, payload)

    async def add_messages(
        self, conversation_id: str, messages: Sequence[MessageBasic]
    ) -> list[MessageRead]:
        """Append messages to the history without asking an agent."""
        body = [message.model_dump(mode="json") for message in messages]
        path = _conv(conversation_id, "messages")
        payload = await self._http.request("POST", path, safety=ONCE, body=body)
        return parse_list(MessageRead, payload)

    async def get_messages(self, conversation_id: str) -> list[MessageRead]:
        path = _conv(conversation_id, "messages")
        return parse_list(MessageRead, await self._http.request(GET, path, safety=SAFE))

    async def get_conversation_feedback(self, conversation_id: str) -> list[FeedbackRead]:
        path = _conv(conversation_id, "feedback")
        return parse_list(FeedbackRead, await self._http.request(GET, path, safety=SAFE))

    async def get_conversation_runs(self, conversation_id: str) -> list[RunRead]:
        path = _conv(conversation_id, "runs")
        return parse_list(RunRead, await self._http.request(GET, path, safety=SAFE))

    async def get_conversation_tags(self, conversation_id: str) -> list[TagRead]:
        path = _conv(conversation_id, "tags")
        return parse_list(TagRead, await self._http.request(GET, path, safety=SAFE))

    async def add_conversation_tag(self, conversation_id: str, tag_id: str) -> list[TagRead]:
        """Tag the conversation; returns all its tags."""
        path = _conv(conversation_id, "tags", tag_id)
        return parse_list(TagRead, await self._http.request("POST", path, safety=SAFE))

    async def remove_conversation_tag(self, conversation_id: str, tag_id: str) -> list[TagRead]:
        path = _conv(conversation_id, "tags", tag_id)
        return parse_list(TagRead, await self._http.request("DELETE", path, safety=SAFE))

    # Chat

    async def chat(
        self,
        conversation_id: str,
        messages: Sequence[MessageBasic],
        *,
        agent: str,
        return_inputs: bool = False,
    ) -> list[MessageRead]:
        """Store `messages` (oldest first; may be empty) and return the agent's answer."""
        payload = await self._http.request(
            "POST",
            _conv(conversation_id, "chat"),
            safety=ONCE,
            params=chat_params(agent, return_inputs, stream=False),
            body=ChatRequest(messages=list(messages)).model_dump(mode="json"),
            unknown=ChatOutcomeUnknown,
        )
        return parse_list(MessageRead, payload)

    async def chat_stream(
        self,
        conversation_id: str,
        messages: Sequence[MessageBasic],
        *,
        agent: str,
        return_inputs: bool = False,
    ) -> AsyncIterator[MessageRead]:
        """Like `chat`, yielding status, info and agent messages as they arrive."""
        events = self._http.stream(
            "POST",
            _conv(conversation_id, "chat"),
            safety=ONCE,
            params=chat_params(agent, return_inputs, stream=True),
            body=ChatRequest(messages=list(messages)).model_dump(mode="json"),
            unknown=ChatOutcomeUnknown,
        )
        async for payload in events:
            yield parse_one(MessageRead, payload)


def retry_policy(settings: Settings) -> RetryPolicy:
    """Tries per request and their backoff, from the settings. A Retry-After is waited up to
    four times the longest backoff (the core used to wait that long before it stopped retrying
    around the client); a longer one ends the turn with the apology (the dead letter replays)."""
    return RetryPolicy(
        max_attempts=settings.agent_attempts,
        base_delay=settings.agent_backoff_seconds,
        max_delay=settings.agent_backoff_max_seconds,
        max_retry_after=settings.agent_backoff_max_seconds * 4,
    )


def _conv(conversation_id: str, *parts: str) -> str:
    return path_of("/v1/conversations", conversation_id, *parts)
