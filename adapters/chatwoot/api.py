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
        """Post as the bot; return the message id. Chatwoot has no idempotency key: after a 5xx
        or a timeout the conversation's newest messages are read before posting again."""
        body = {
            "content": content,
            "message_type": "outgoing",
            "private": private,
            "content_type": "text",
        }
        url = self._url(account_id, conversation_id)
        found: list[str] = []

        async def applied() -> bool:
            found.extend(await self._recent_bot_message(url, content, private))
            return bool(found)

        response = await self._api.call(
            "POST", f"{url}/messages", json=body, headers=self._headers, applied=applied
        )
        if response is None:
            return found[0]
        return str(response.json().get("id", ""))

    async def _recent_bot_message(self, url: str, content: str, private: bool) -> list[str]:
        """The id of a message with this content by the bot among the conversation's newest
        (the conversation's `messages`: the last one, or up to 10 unread). Versions where bots
        may not read a conversation (401) say nothing: the post is repeated."""
        try:
            response = await self._api.http.get(url, headers=self._headers)
        except httpx.TransportError:
            return []
        if not response.is_success:
            return []
        for message in (response.json() or {}).get("messages") or []:
            sender = message.get("sender") or {}
            if (
                sender.get("type") == "agent_bot"
                and bool(message.get("private")) == private
                and str(message.get("content", "")).strip() == content.strip()
            ):
                return [str(message.get("id", ""))]
        return []

    async def toggle_status(self, account_id: str, conversation_id: str, status: str) -> None:
        url = f"{self._url(account_id, conversation_id)}/toggle_status"
        await self._api.call("POST", url, json={"status": status}, headers=self._headers)

    def _url(self, account_id: str, conversation_id: str) -> str:
        return f"{self._base}/api/v1/accounts/{account_id}/conversations/{conversation_id}"
