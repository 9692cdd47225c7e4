"""Slack installations and OAuth states in Redis, behind slack_sdk's async store interfaces."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis.exceptions
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bridge.errors import StorageUnavailable
from bridge.store.keys import Namespace
from bridge.threadmap import RedisClient

log = logging.getLogger(__name__)

_NONE = "none"  # an absent enterprise (plain workspace) or team (org-wide install)
# Told which workspace's installation this process changed (None: an org-wide one, or all).
Changed = Callable[[str | None], None]


class SlackKeys:
    """Every key the Slack OAuth mode writes, through the store's `Namespace("slack")`.

    An installation's keys share the hash tag `{<enterprise>:<team>}`, so deleting one is a
    single-slot transaction on Redis Cluster. Installations have no TTL: they live until Slack
    says `app_uninstalled` or `tokens_revoked`.
    """

    STATE_TTL_SECONDS = 600
    """An install link is good for 10 minutes (Bolt's own default for its state cookie)."""

    def __init__(self, namespace: str = "slack") -> None:
        self._ns = Namespace(namespace)

    def _install(self, enterprise_id: str | None, team_id: str | None, *parts: str) -> str:
        tag = self._ns.hash_tag(enterprise_id or _NONE, team_id or _NONE)
        return self._ns.shared("install", tag, *parts)

    def bot(self, enterprise_id: str | None, team_id: str | None) -> str:
        """String: JSON of the latest bot installation."""
        return self._install(enterprise_id, team_id, "bot")

    def installation(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> str:
        """String: JSON of the latest installation (or the latest by `user_id`)."""
        parts = ("user", user_id) if user_id else ("latest",)
        return self._install(enterprise_id, team_id, *parts)

    def installers(self, enterprise_id: str | None, team_id: str | None) -> str:
        """Set of the user ids that installed, so all their records can be deleted."""
        return self._install(enterprise_id, team_id, "installers")

    def team(self, team_id: str) -> str:
        """String: JSON {enterprise_id, org_wide} of a workspace, to find its installation
        when only the team id is known (replies are keyed by team)."""
        return self._ns.shared("team", team_id)

    def state(self, state: str) -> str:
        """String: an issued OAuth state, consumed once (STATE_TTL_SECONDS)."""
        return self._ns.shared("oauth-state", state)


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


class RedisInstallationStore(AsyncInstallationStore):
    """slack_sdk's `AsyncInstallationStore` on Redis: bot and user installations per
    enterprise/team, org-wide installs (team `None`) included."""

    def __init__(self, redis: RedisClient, keys: SlackKeys | None = None) -> None:
        self._redis = redis
        self._keys = keys or SlackKeys()
        self._watchers: list[Changed] = []

    @property
    def logger(self) -> logging.Logger:
        return log

    def watch(self, changed: Changed) -> None:
        """Tell `changed` of every installation this process saves or deletes (what it keeps
        from the store is stale then); another process's changes are not told."""
        self._watchers.append(changed)

    def _changed(self, team_id: str | None) -> None:
        for changed in self._watchers:
            changed(team_id)

    async def async_save(self, installation: Installation) -> None:
        e, t = installation.enterprise_id, _team(installation.team_id, installation)
        data = _dumps(installation.to_dict_for_copying())
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._keys.installation(e, t), data)
                if installation.user_id:
                    pipe.set(self._keys.installation(e, t, installation.user_id), data)
                    pipe.sadd(self._keys.installers(e, t), installation.user_id)
                await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable("cannot save the Slack installation") from exc
        if installation.bot_token:
            await self.async_save_bot(installation.to_bot())
        if installation.team_id and not installation.is_enterprise_install:
            await self.remember_team(installation.team_id, e, org_wide=False)
        log.info("slack app installed", extra={"team_id": t or "", "enterprise_id": e or ""})

    async def async_save_bot(self, bot: Bot) -> None:
        key = self._keys.bot(bot.enterprise_id, _team(bot.team_id, bot))
        await self._set(key, _dumps(bot.to_dict_for_copying()), "save the Slack bot")
        self._changed(_team(bot.team_id, bot))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        team = None if is_enterprise_install else team_id
        raw = await self._get(self._keys.bot(enterprise_id, team), "find the Slack bot")
        if raw is None:
            _log_missing(enterprise_id, team)
            return None
        return Bot(**json.loads(raw))

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        team = None if is_enterprise_install else team_id
        key = self._keys.installation(enterprise_id, team, user_id)
        raw = await self._get(key, "find the Slack installation")
        if raw is None:
            if user_id is None:
                _log_missing(enterprise_id, team)
            return None
        return Installation(**json.loads(raw))

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        # The latest installation carries the bot token too: a revoked bot token leaves nothing
        # this bot-only app could use.
        keys = [
            self._keys.bot(enterprise_id, team_id),
            self._keys.installation(enterprise_id, team_id),
        ]
        await self._delete(keys, "delete the Slack bot")
        self._changed(team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is not None:
            key = self._keys.installation(enterprise_id, team_id, user_id)
            await self._delete([key], "delete the Slack installation")
            return
        try:
            users = await self._redis.smembers(self._keys.installers(enterprise_id, team_id))
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable("cannot list Slack installers") from exc
        names = [u.decode() if isinstance(u, bytes) else str(u) for u in users]
        keys = [self._keys.installation(enterprise_id, team_id, u) for u in names]
        keys += [self._keys.installation(enterprise_id, team_id)]
        keys += [self._keys.installers(enterprise_id, team_id)]
        await self._delete(keys, "delete the Slack installation")
        self._changed(team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)
        log.info(
            "slack installation removed",
            extra={"team_id": team_id or "", "enterprise_id": enterprise_id or ""},
        )

    # ---- beyond slack_sdk's interface: which installation serves a workspace

    async def remember_team(
        self, team_id: str, enterprise_id: str | None, *, org_wide: bool
    ) -> None:
        value = json.dumps({"enterprise_id": enterprise_id, "org_wide": org_wide})
        await self._set(self._keys.team(team_id), value, "remember the Slack team")
        self._changed(team_id)

    async def find_for_team(self, team_id: str) -> Installation | None:
        """The installation that serves workspace `team_id` (its own, or its org's)."""
        raw = await self._get(self._keys.team(team_id), "find the Slack team")
        route = json.loads(raw) if raw is not None else {}
        return await self.async_find_installation(
            enterprise_id=route.get("enterprise_id"),
            team_id=team_id,
            is_enterprise_install=bool(route.get("org_wide")),
        )

    async def _get(self, key: str, what: str) -> str | None:
        try:
            raw = await self._redis.get(key)
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable(f"cannot {what}") from exc
        return raw.decode() if isinstance(raw, bytes) else raw

    async def _set(self, key: str, value: str, what: str) -> None:
        try:
            await self._redis.set(key, value)
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable(f"cannot {what}") from exc

    async def _delete(self, keys: list[str], what: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:  # one slot: the installation's hash tag
                    pipe.delete(key)
                await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable(f"cannot {what}") from exc


def _team(team_id: str | None, installed: Installation | Bot) -> str | None:
    """Org-wide installs are stored under the enterprise alone (slack_sdk's own stores agree)."""
    return None if installed.is_enterprise_install else team_id


def _log_missing(enterprise_id: str | None, team_id: str | None) -> None:
    log.warning(
        "slack: no installation for this workspace (never installed, uninstalled or token "
        "revoked); its events are ignored",
        extra={"team_id": team_id or "", "enterprise_id": enterprise_id or ""},
    )


class RedisOAuthStateStore(AsyncOAuthStateStore):
    """slack_sdk's `AsyncOAuthStateStore` on Redis: each issued state is consumed at most once."""

    def __init__(
        self,
        redis: RedisClient,
        keys: SlackKeys | None = None,
        expiration_seconds: int = SlackKeys.STATE_TTL_SECONDS,
    ) -> None:
        self._redis = redis
        self._keys = keys or SlackKeys()
        self._ttl = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        try:
            await self._redis.set(self._keys.state(state), "1", ex=self._ttl, nx=True)
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable("cannot issue an OAuth state") from exc
        return state

    async def async_consume(self, state: str) -> bool:
        try:
            # GETDEL: two concurrent redirects with one state cannot both succeed.
            found = await self._redis.getdel(self._keys.state(state))
        except redis.exceptions.RedisError as exc:
            raise StorageUnavailable("cannot consume the OAuth state") from exc
        if found is None:
            log.info("slack oauth state unknown, expired or used")
        return found is not None
