"""OAuth mode: Bolt's installation-store authorization, with one first `auth.test` per workspace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext

from adapters.slack.installations import RedisInstallationStore

_Workspace = tuple[str | None, str | None, bool | None]
# A workspace refused (no installation, or auth.test refused its token) is refused without
# asking Slack again for this long, while its installation's token stays the one refused: a
# revoked workspace's flood of events costs one auth.test per period, not one per event.
REFUSAL_SECONDS = 60.0


class _FirstAsk:
    __slots__ = ("done", "refused")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.refused = False


class FirstAskShared(AsyncInstallationStoreAuthorize):
    """Bolt's authorization (the installation store read per request, `auth.test` answers
    cached per token), except that a workspace's requests arriving while its first
    authorization in this process is in flight wait for it.

    Bolt caches an answer only once `auth.test` has given it, so every request of a fresh
    process's first burst asked on its own (60 events at once over 3 workspaces: 60 calls, on
    the acks' path and against Slack's rate limit). The waiters then go through Bolt as usual,
    reading the store and finding the token's answer cached; if the first was refused (no
    installation, or `auth.test` said the token is no longer valid) they are refused with it.
    A workspace found without a usable installation later (uninstalled, token revoked) starts
    over: its token's cached answer is dropped and its next request is a first one again.
    So does one whose token Slack refused on a call (`forget`): Slack may revoke a token
    without the bridge hearing of it, and Bolt would otherwise keep accepting its events.
    A refused first ask is remembered for REFUSAL_SECONDS with the token the store held
    before it: the workspace's requests meanwhile read the store only, and are refused while
    it holds that token. A new installation (another token, written by any process, or any
    change this process makes to the workspace's installation) ends the refusal at once.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        super().__init__(cache_enabled=True, **kwargs)
        self._first: dict[_Workspace, _FirstAsk] = {}
        self._tokens: dict[_Workspace, str] = {}  # authorized workspaces: their token
        self._clock = clock
        # Refused workspaces: the token their installation held, and until when.
        self._refused: dict[_Workspace, tuple[str | None, float]] = {}
        if isinstance(self.installation_store, RedisInstallationStore):
            self.installation_store.watch(self._installation_changed)

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **actor: str | None,
    ) -> AuthorizeResult | None:
        workspace = (enterprise_id, team_id, context.is_enterprise_install)
        ask: dict[str, Any] = dict(
            context=context, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, **actor
        )
        refusal = self._refused.get(workspace)
        if refusal is not None and await self._still_refused(workspace, *refusal):
            return None
        first = self._first.get(workspace)
        if first is not None:
            await first.done.wait()
            if first.refused:
                return None
        elif workspace not in self._tokens:
            first = self._first[workspace] = _FirstAsk()
            try:
                # Read before the ask: a token installed meanwhile is not taken for the refused one.
                token = await self._token_of(workspace)
                result = await self._ask(workspace, ask)
                first.refused = result is None
                if first.refused:
                    self._refused[workspace] = (token, self._clock() + REFUSAL_SECONDS)
                return result
            finally:
                del self._first[workspace]
                first.done.set()
        return await self._ask(workspace, ask)

    async def _ask(self, workspace: _Workspace, ask: dict[str, Any]) -> AuthorizeResult | None:
        result = await super().__call__(**ask)
        token = (result.bot_token or result.user_token) if result is not None else None
        if token is not None:
            self._tokens[workspace] = token
        elif (gone := self._tokens.pop(workspace, None)) is not None:
            self.authorize_result_cache.pop(gone, None)
        return result

    async def _still_refused(self, workspace: _Workspace, token: str | None, until: float) -> bool:
        if self._clock() < until and await self._token_of(workspace) == token:
            return True
        if self._refused.get(workspace, (None, None))[1] == until:
            del self._refused[workspace]
        return False

    async def _token_of(self, workspace: _Workspace) -> str | None:
        enterprise_id, team_id, org_wide = workspace
        bot = await self.installation_store.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=org_wide
        )
        return bot.bot_token if bot is not None else None

    def _installation_changed(self, team_id: str | None) -> None:
        for workspace in [w for w in self._refused if team_id in (None, w[1])]:
            del self._refused[workspace]

    def forget(self, token: str) -> bool:
        """Drop what is cached for a token Slack refused: the next request of its workspaces
        asks `auth.test` again (once, shared) and is refused if Slack still refuses it.
        Whether anything was cached."""
        cached = self.authorize_result_cache.pop(token, None) is not None
        for workspace in [w for w, t in self._tokens.items() if t == token]:
            del self._tokens[workspace]
            cached = True
        return cached
