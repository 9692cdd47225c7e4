"""The Slack Web API clients: one per bot token, sharing one connection pool."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.apierrors import error_code
from adapters.slack.installations import RedisInstallationStore
from adapters.slack.webclient import LeanWebClient, LevelAwareLogger
from bridge import backoff, http1
from bridge.errors import PermanentPlatformError

_CLIENTS_CACHED = 1_000
# OAuth mode: how long a workspace's client (its installation's token, read from Redis) serves
# its calls without another read. A change this process makes to an installation drops it at
# once (RedisInstallationStore.watch), and so does a token Slack refuses (Clients.forget); a
# re-install by another process is seen within this bound (the old token, still cached, works
# until Slack refuses it, and that refusal drops it too).
INSTALLATION_SECONDS = 60.0
# Slack's rate limits are per method and channel (chat.postMessage: about 1 per second): a 429
# is normal traffic, waited out as Slack says, many times if need be.
RATE_LIMITED = backoff.Retry(attempts=20, base=1.0, cap=8.0)
UNREACHABLE = backoff.Retry(attempts=3, base=0.5, cap=4.0)
# Calls that would act twice if repeated after Slack may have received them: a dropped
# connection is retried only by SlackSender, which looks the part up first.
POSTS = frozenset({"chat.postMessage", "chat.postEphemeral"})
# Slack refused the token itself (revoked, uninstalled, account deactivated): no call can work.
TOKEN_REFUSALS = frozenset({"invalid_auth", "account_inactive", "token_revoked"})
# Told (workspace, token, error) when Slack refuses a token on any call (adapters/slack/app.py).
TokenRefused = Callable[[str, str, str], None]


class _Backoff(RetryIntervalCalculator):
    def __init__(self, retry: backoff.Retry) -> None:
        self._retry = retry

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return self._retry.wait(current_attempt + 1)


class RateLimitRetry(AsyncRetryHandler):
    """429: Slack did nothing; wait its Retry-After (a floor of the one backoff formula)."""

    retried_statuses = frozenset({429})  # what LeanWebClient asks it about

    def __init__(self, retry: backoff.Retry = RATE_LIMITED) -> None:
        super().__init__(retry.attempts - 1, _Backoff(retry))
        self._retry = retry

    async def _can_retry_async(self, *, response: HttpResponse | None = None, **_: Any) -> bool:
        return response is not None and response.status_code == 429

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        retry_after = _retry_after(response) if response is not None else None
        state.next_attempt_requested = True
        await asyncio.sleep(self._retry.wait(state.current_attempt + 1, retry_after))
        state.increment_current_attempt()


class ConnectionRetry(AsyncRetryHandler):
    """A failed connection: any call when nothing was sent; a dropped one except for posts."""

    retried_statuses: frozenset[int] = frozenset()  # no answer is retried, only failures

    def __init__(self, retry: backoff.Retry = UNREACHABLE) -> None:
        super().__init__(retry.attempts - 1, _Backoff(retry))

    async def _can_retry_async(
        self, *, request: HttpRequest, error: Exception | None = None, **_: Any
    ) -> bool:
        if isinstance(error, aiohttp.ClientConnectorError):
            return True
        dropped = (aiohttp.ServerConnectionError, aiohttp.ClientOSError)
        return isinstance(error, dropped) and request.url.rsplit("/", 1)[-1] not in POSTS


def _retry_after(response: HttpResponse) -> float | None:
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            return backoff.parse_retry_after(str(values[0]))
    return None


# slack_sdk's own logger for the Web API, asked for its effective level (webclient.py).
_WEB_API_LOGGER = LevelAwareLogger(logging.getLogger("slack_sdk.web.async_base_client"))


def build_client(token: str | None, base_url: str) -> AsyncWebClient:
    """A Web API client whose retry handlers are the Slack layer's only retries but for posts'
    unsure outcomes (SlackSender): 429s wait Retry-After, failed connections are retried."""
    return LeanWebClient(**_client_args(token, base_url))


def _client_args(token: str | None, base_url: str) -> dict[str, Any]:
    return {
        "token": token,
        "base_url": base_url,
        "retry_handlers": [ConnectionRetry(), RateLimitRetry()],
        # Bolt's per-request clients take this logger too (AsyncApp._init_context).
        "logger": cast(logging.Logger, _WEB_API_LOGGER),
    }


def open_session(client: AsyncWebClient) -> None:
    """Give an owned client its connections: an aiohttp session (slack_sdk opens one per call
    without it), and kept-alive HTTP/1.1 for its JSON POSTs (bridge.http1) unless a proxy is
    set or aiohttp offers an encoding http1 cannot undo."""
    client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout))
    if isinstance(client, LeanWebClient) and not client.proxy and http1.usable():
        client.http1 = http1.Http1(timeout=client.timeout, ssl_context=client.ssl)


async def close_session(client: AsyncWebClient) -> None:
    if isinstance(client, LeanWebClient) and client.http1 is not None:
        client.http1.close()
        client.http1 = None
    if client.session is not None:
        await client.session.close()
        client.session = None


class WorkspaceClient(LeanWebClient):
    """One workspace's client: any call Slack answers with a refusal of the token itself
    (TOKEN_REFUSALS), whatever its method (posts, status, reactions, look-ups, feedback),
    tells `refused` before it raises."""

    def __init__(self, *args: Any, workspace: str, refused: TokenRefused, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self._refused = refused

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = error_code(exc)
            if error in TOKEN_REFUSALS and self.token:
                self._refused(self.workspace, self.token, str(error))
            raise


class Clients:
    """The Web API client for a workspace: with the one bot token, or (OAuth mode) the token of
    the installation serving that team, Enterprise Grid org-wide ones included, kept for
    INSTALLATION_SECONDS (two Redis reads per call before). Every client shares the base's
    connection pool, and tells `refused` (after forgetting the token) when Slack refuses it."""

    def __init__(
        self,
        base: AsyncWebClient,
        store: RedisInstallationStore | None = None,
        *,
        refused: TokenRefused | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self._store = store
        self._refused = refused
        self._clock = clock
        self._teams: dict[str, tuple[AsyncWebClient, float]] = {}  # client, read until
        if store is not None:
            store.watch(self._installation_changed)

    @property
    def multi_workspace(self) -> bool:
        return self._store is not None

    async def for_team(self, team_id: str) -> AsyncWebClient:
        cached = self._teams.get(team_id)
        if self._store is None:
            return self._one_token(team_id, cached)
        now = self._clock()
        if cached is not None and now < cached[1]:
            return self._pooled(cached[0])
        installation = await self._store.find_for_team(team_id)
        token = installation.bot_token if installation is not None else None
        if not token:
            self._teams.pop(team_id, None)
            raise PermanentPlatformError(f"slack: the app is not installed in team {team_id}")
        client = cached[0] if cached is not None and cached[0].token == token else None
        self._keep(team_id, client or self._build(team_id, token), now + INSTALLATION_SECONDS)
        return self._teams[team_id][0]

    def _one_token(
        self, team_id: str, cached: tuple[AsyncWebClient, float] | None
    ) -> AsyncWebClient:
        if cached is not None:
            return self._pooled(cached[0])
        if not isinstance(self.base, LeanWebClient) or not self.base.token:
            return self.base  # a client of the caller's own making: used as it is
        self._keep(team_id, self._build(team_id, self.base.token), float("inf"))
        return self._teams[team_id][0]

    def forget(self, token: str) -> None:
        """Slack refused `token`: its workspaces read their installation on their next call."""
        if self._store is None:
            return  # the one token: nothing else to read
        for team in [t for t, (client, _) in self._teams.items() if client.token == token]:
            del self._teams[team]

    def _told_refused(self, workspace: str, token: str, error: str) -> None:
        self.forget(token)
        if self._refused is not None:
            self._refused(workspace, token, error)

    def _installation_changed(self, team_id: str | None) -> None:
        if team_id is None:  # an org-wide installation serves teams not named
            self._teams.clear()
        else:
            self._teams.pop(team_id, None)

    def _keep(self, team_id: str, client: AsyncWebClient, until: float) -> None:
        if len(self._teams) >= _CLIENTS_CACHED:
            self._teams.clear()
        self._teams[team_id] = (client, until)

    def _build(self, team_id: str, token: str) -> AsyncWebClient:
        args = _client_args(token, self.base.base_url)
        client = WorkspaceClient(**args, workspace=team_id, refused=self._told_refused)
        return self._pooled(client)

    def _pooled(self, client: AsyncWebClient) -> AsyncWebClient:
        """`client` on the base's connections, as they are now (an adapter restarted opens new)."""
        if client.session is not self.base.session:
            client.session = self.base.session
            if isinstance(client, LeanWebClient) and isinstance(self.base, LeanWebClient):
                client.http1 = self.base.http1
        return client
