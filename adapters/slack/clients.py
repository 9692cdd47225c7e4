"""The Slack Web API clients: one per bot token, sharing one connection pool."""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.installations import RedisInstallationStore
from bridge.errors import PermanentPlatformError

_CLIENTS_CACHED = 1_000


def build_client(token: str | None, base_url: str) -> AsyncWebClient:
    """A Web API client: 429s wait `Retry-After`; failed connections are retried."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncRateLimitErrorRetryHandler(max_retry_count=20),
        ],
    )


class Clients:
    """The Web API client for a workspace: the one bot token's, or (OAuth mode) a client with
    the token of the installation serving that team, Enterprise Grid org-wide ones included."""

    def __init__(self, base: AsyncWebClient, store: RedisInstallationStore | None = None) -> None:
        self.base = base
        self._store = store
        self._by_token: dict[str, AsyncWebClient] = {}

    @property
    def multi_workspace(self) -> bool:
        return self._store is not None

    async def for_team(self, team_id: str) -> AsyncWebClient:
        if self._store is None:
            return self.base
        installation = await self._store.find_for_team(team_id)
        token = installation.bot_token if installation is not None else None
        if not token:
            raise PermanentPlatformError(f"slack: the app is not installed in team {team_id}")
        client = self._by_token.get(token)
        if client is None:
            if len(self._by_token) >= _CLIENTS_CACHED:
                self._by_token.clear()
            client = build_client(token, self.base.base_url)
            client.session = self.base.session  # one connection pool for every workspace
            self._by_token[token] = client
        return client
