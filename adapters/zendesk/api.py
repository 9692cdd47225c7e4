"""The Ticketing API calls the bridge makes: comment on a ticket, set its status, who am I."""

from __future__ import annotations

from typing import Any

import httpx

from adapters.helpdesk import DeskApi
from bridge.errors import PermanentPlatformError


class Ticketing:
    """API-token auth (`{email}/token` : token); every call goes through one retry layer."""

    def __init__(self, base_url: str, email: str, token: str, bot_user_id: str, api: DeskApi):
        self._base = base_url.rstrip("/")
        self._auth = httpx.BasicAuth(f"{email}/token", token)
        self._bot_user_id = bot_user_id
        self._api = api

    async def me(self) -> dict[str, Any]:
        response = await self._api.call(
            "GET", f"{self._base}/api/v2/users/me.json", auth=self._auth
        )
        user: dict[str, Any] = response.json().get("user") or {}
        if not user.get("id"):
            # Zendesk answers an anonymous user (no id) when the credentials are wrong.
            raise PermanentPlatformError("Zendesk did not accept the API token")
        return user

    async def comment(self, ticket_id: str, body: str, *, public: bool) -> str:
        """Add a comment authored by the bot user; return the new comment's id."""
        comment = {"body": body, "public": public, "author_id": _id(self._bot_user_id)}
        response = await self._update(ticket_id, {"comment": comment})
        events = (response.json().get("audit") or {}).get("events") or []
        ids = [str(e["id"]) for e in events if e.get("type") == "Comment" and "id" in e]
        return ids[-1] if ids else f"ticket:{ticket_id}"

    async def set_status(self, ticket_id: str, status: str) -> None:
        await self._update(ticket_id, {"status": status})

    async def _update(self, ticket_id: str, ticket: dict[str, Any]) -> httpx.Response:
        url = f"{self._base}/api/v2/tickets/{ticket_id}.json"
        return await self._api.call("PUT", url, json={"ticket": ticket}, auth=self._auth)


def _id(value: str) -> int | str:
    return int(value) if value.isdigit() else value
