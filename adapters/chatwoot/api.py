"""The account API calls an Agent Bot's token may make: post a message, toggle the status."""

from __future__ import annotations

import httpx

from adapters.helpdesk import DeskApi


class Conversations:
    """`api_access_token` header auth; every call goes through one retry layer."""

    def __init__(self, base_url: str, token: str, api: DeskApi) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"api_access_token": token}
        self._api = api

    async def post_message(
        self, account_id: str, conversation_id: str, content: str, *, private: bool
    ) -> str:
        body = {
            "content": content,
            "message_type": "outgoing",
            "private": private,
            "content_type": "text",
        }
        response = await self._call("messages", account_id, conversation_id, body)
        return str(response.json().get("id", ""))

    async def toggle_status(self, account_id: str, conversation_id: str, status: str) -> None:
        await self._call("toggle_status", account_id, conversation_id, {"status": status})

    async def _call(
        self, action: str, account_id: str, conversation_id: str, body: dict[str, object]
    ) -> httpx.Response:
        url = f"{self._base}/api/v1/accounts/{account_id}/conversations/{conversation_id}/{action}"
        return await self._api.call("POST", url, json=body, headers=self._headers)
