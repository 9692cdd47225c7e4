"""The account API calls an Agent Bot's token may make: post a message, toggle the status."""

from __future__ import annotations

import httpx

from adapters.helpdesk import DeskApi
from bridge.errors import PermanentPlatformError, PlatformError


class Conversations:
    """`api_access_token` header auth; every call goes through one retry layer."""

    def __init__(self, base_url: str, token: str, api: DeskApi) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"api_access_token": token}
        self._api = api

    async def check_token(self, account_id: str) -> None:
        """Ask for a conversation that does not exist: an unknown token is told so (401
        "Invalid Access Token"); a bot's token gets a 404 or, on versions where bots may not
        read conversations, a 401 of its own."""
        url = f"{self._base}/api/v1/accounts/{account_id}/conversations/0"
        try:
            response = await self._api.http.get(url, headers=self._headers)
        except httpx.TransportError as exc:
            raise PlatformError(f"Chatwoot did not answer: {type(exc).__name__}") from exc
        if response.status_code == 401 and "Invalid Access Token" in response.text:
            raise PermanentPlatformError("Chatwoot did not accept CHATWOOT_BOT_TOKEN")
        if response.status_code >= 500:
            raise PlatformError(f"Chatwoot answered HTTP {response.status_code}")

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
