"""The stateless Runs endpoints of the Engage Smarter client (mixed into `EngageClient`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from bridge.engage.errors import ChatOutcomeUnknown
from bridge.engage.models import (
    FeedbackRead,
    FeedbackUpsert,
    MessageBasic,
    MessageRead,
    RunChatRequest,
    RunRead,
    TagRead,
)
from bridge.engage.retry import Safety
from bridge.engage.transport import EngageHttp, chat_params, page, parse_list, parse_one, path_of


class RunsMixin:
    """A run sends the whole history each time; the platform still files it in a conversation."""

    _http: EngageHttp

    async def run_chat(
        self,
        messages: Sequence[MessageBasic],
        *,
        agent: str,
        data: dict[str, Any] | None = None,
        return_inputs: bool = False,
    ) -> list[MessageRead]:
        payload = await self._http.request(
            "POST",
            "/v1/runs/chat",
            safety=Safety.UNSENT_ONLY,
            params=chat_params(agent, return_inputs, stream=False),
            body=_run_body(messages, data),
            unknown=ChatOutcomeUnknown,
        )
        return parse_list(MessageRead, payload)

    async def run_chat_stream(
        self,
        messages: Sequence[MessageBasic],
        *,
        agent: str,
        data: dict[str, Any] | None = None,
        return_inputs: bool = False,
    ) -> AsyncIterator[MessageRead]:
        events = self._http.stream(
            "POST",
            "/v1/runs/chat",
            safety=Safety.UNSENT_ONLY,
            params=chat_params(agent, return_inputs, stream=True),
            body=_run_body(messages, data),
            unknown=ChatOutcomeUnknown,
        )
        async for payload in events:
            yield parse_one(MessageRead, payload)

    async def search_own_runs(
        self,
        *,
        limit: int = 20,
        offset: int = 0,
        reversed: bool = True,
        tag_id: str | None = None,
        agent: str | None = None,
    ) -> list[RunRead]:
        params = page(limit, offset, reversed, tag_id=tag_id, agent=agent)
        payload = await self._http.request(
            "GET", "/v1/runs/me", safety=Safety.IDEMPOTENT, params=params
        )
        return parse_list(RunRead, payload)

    async def get_run(self, run_id: str) -> RunRead:
        payload = await self._http.request("GET", _run(run_id), safety=Safety.IDEMPOTENT)
        return parse_one(RunRead, payload)

    async def get_run_messages(self, run_id: str) -> list[MessageRead]:
        path = _run(run_id, "messages")
        return parse_list(
            MessageRead, await self._http.request("GET", path, safety=Safety.IDEMPOTENT)
        )

    async def get_run_feedback(self, run_id: str) -> list[FeedbackRead]:
        path = _run(run_id, "feedback")
        return parse_list(
            FeedbackRead, await self._http.request("GET", path, safety=Safety.IDEMPOTENT)
        )

    async def upsert_run_feedback(self, run_id: str, feedback: FeedbackUpsert) -> FeedbackRead:
        """Create or replace the calling user's feedback on a run (an upsert: safe to repeat)."""
        payload = await self._http.request(
            "POST",
            _run(run_id, "feedback"),
            safety=Safety.IDEMPOTENT,
            body=feedback.model_dump(mode="json"),
        )
        return parse_one(FeedbackRead, payload)

    async def get_run_tags(self, run_id: str) -> list[TagRead]:
        path = _run(run_id, "tags")
        return parse_list(TagRead, await self._http.request("GET", path, safety=Safety.IDEMPOTENT))

    async def add_run_tag(self, run_id: str, tag_id: str) -> list[TagRead]:
        path = _run(run_id, "tags", tag_id)
        return parse_list(TagRead, await self._http.request("POST", path, safety=Safety.IDEMPOTENT))

    async def remove_run_tag(self, run_id: str, tag_id: str) -> list[TagRead]:
        path = _run(run_id, "tags", tag_id)
        payload = await self._http.request("DELETE", path, safety=Safety.IDEMPOTENT)
        return parse_list(TagRead, payload)


def _run_body(messages: Sequence[MessageBasic], data: dict[str, Any] | None) -> dict[str, Any]:
    return RunChatRequest(messages=list(messages), data=data or {}).model_dump(mode="json")


def _run(run_id: str, *parts: str) -> str:
    return path_of("/v1/runs", run_id, *parts)
