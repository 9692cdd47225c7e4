"""The Ticketing API calls the bridge makes: comment on a ticket, set its status, who am I."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from adapters.helpdesk import DeskApi
from bridge.errors import PermanentPlatformError

# A duplicate check looks at comments from this long before the first attempt (clocks differ).
_CLOCK_SKEW = timedelta(seconds=60)
_PAGE_SIZE = 100
_MAX_PAGES = 3


class Ticketing:
    """API-token auth (`{email}/token` : token); every call goes through one retry layer."""

    def __init__(
        self,
        base_url: str,
        email: str,
        token: str,
        bot_user_id: str,
        api: DeskApi,
        page_size: int = _PAGE_SIZE,
    ) -> None:
        self._page_size = page_size
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
        """Add a comment authored by the bot user; return the new comment's id.

        Zendesk has no idempotency key for ticket updates: after a 5xx or a timeout the update
        may have been applied, so the ticket's newest comments are read before it is repeated.
        """
        comment = {"body": body, "public": public, "author_id": _id(self._bot_user_id)}
        since = datetime.now(UTC) - _CLOCK_SKEW
        found: list[str] = []

        async def applied() -> bool:
            found.extend(await self._find_comment(ticket_id, body, public, since))
            return bool(found)

        url = f"{self._base}/api/v2/tickets/{ticket_id}.json"
        response = await self._api.call(
            "PUT", url, json={"ticket": {"comment": comment}}, auth=self._auth, applied=applied
        )
        if response is None:
            return found[0]
        events = (response.json().get("audit") or {}).get("events") or []
        ids = [str(e["id"]) for e in events if e.get("type") == "Comment" and "id" in e]
        return ids[-1] if ids else f"ticket:{ticket_id}"

    async def _find_comment(
        self, ticket_id: str, body: str, public: bool, since: datetime
    ) -> list[str]:
        """Ids of the bot's comments with this body made since `since`, newest first (cursor
        pagination, newest first, stopping at older comments)."""
        url: str | None = (
            f"{self._base}/api/v2/tickets/{ticket_id}/comments.json"
            f"?sort_order=desc&page[size]={self._page_size}"
        )
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            page = (await self._api.call("GET", url, auth=self._auth)).json()
            for comment in page.get("comments") or []:
                created = _time(comment.get("created_at"))
                if created is not None and created < since:
                    return []
                if (
                    str(comment.get("author_id")) == self._bot_user_id
                    and comment.get("public", True) == public
                    and str(comment.get("body", "")).strip() == body.strip()
                ):
                    return [str(comment["id"])]
            more = (page.get("meta") or {}).get("has_more")
            url = (page.get("links") or {}).get("next") if more else None
        return []

    async def set_status(self, ticket_id: str, status: str) -> None:
        url = f"{self._base}/api/v2/tickets/{ticket_id}.json"
        await self._api.call("PUT", url, json={"ticket": {"status": status}}, auth=self._auth)


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _id(value: str) -> int | str:
    return int(value) if value.isdigit() else value
