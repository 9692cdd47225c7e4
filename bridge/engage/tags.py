"""The Tags endpoints of the Engage Smarter client (mixed into `EngageClient`)."""

from __future__ import annotations

from bridge.engage.models import (
    ConversationRead,
    RunRead,
    Success,
    TagCreate,
    TagRead,
    TagUpdate,
)
from bridge.engage.retry import Safety
from bridge.engage.transport import EngageHttp, page, parse_list, parse_one, path_of

SAFE = Safety.IDEMPOTENT


class TagsMixin:
    """Tags belong to the organisation; conversations and runs can carry any number of them."""

    _http: EngageHttp

    async def list_tags(
        self, *, search: str = "", limit: int = 20, offset: int = 0, reversed: bool = True
    ) -> list[TagRead]:
        """Tags whose name or description matches `search` (all tags when it is empty)."""
        params = page(limit, offset, reversed, search=search)
        payload = await self._http.request("GET", "/v1/tags", safety=SAFE, params=params)
        return parse_list(TagRead, payload)

    async def create_tag(self, name: str, *, description: str = "") -> TagRead:
        body = TagCreate(name=name, description=description).model_dump(mode="json")
        payload = await self._http.request("POST", "/v1/tags", safety=Safety.UNSENT_ONLY, body=body)
        return parse_one(TagRead, payload)

    async def get_tag(self, tag_id: str) -> TagRead:
        return parse_one(TagRead, await self._http.request("GET", _tag(tag_id), safety=SAFE))

    async def update_tag(self, tag_id: str, *, description: str | None = None) -> TagRead:
        """Only the description of a tag can change."""
        body = TagUpdate(description=description).model_dump(mode="json")
        payload = await self._http.request("PATCH", _tag(tag_id), safety=SAFE, body=body)
        return parse_one(TagRead, payload)

    async def delete_tag(self, tag_id: str) -> bool:
        # Not repeated after an ambiguous failure: a second DELETE would answer 404.
        payload = await self._http.request("DELETE", _tag(tag_id), safety=Safety.UNSENT_ONLY)
        return parse_one(Success, payload).success

    async def get_tagged_conversations(
        self, tag_id: str, *, limit: int = 20, offset: int = 0, reversed: bool = True
    ) -> list[ConversationRead]:
        params = page(limit, offset, reversed)
        path = _tag(tag_id, "conversations")
        payload = await self._http.request("GET", path, safety=SAFE, params=params)
        return parse_list(ConversationRead, payload)

    async def get_tagged_runs(
        self, tag_id: str, *, limit: int = 20, offset: int = 0, reversed: bool = True
    ) -> list[RunRead]:
        params = page(limit, offset, reversed)
        payload = await self._http.request("GET", _tag(tag_id, "runs"), safety=SAFE, params=params)
        return parse_list(RunRead, payload)


def _tag(tag_id: str, *parts: str) -> str:
    return path_of("/v1/tags", tag_id, *parts)
