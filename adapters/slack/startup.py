"""What the Slack adapter checks before it serves: the bot token, the app token, OAuth settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.apierrors import error_code
from adapters.slack.events import BotIdentity
from adapters.slack.oauth import INSTALL_PATH, check_client, oauth_problems
from adapters.slack.outbound import translate
from adapters.slack.settings import SlackOAuthSettings
from bridge.errors import ConfigError

log = logging.getLogger(__name__)


async def identify(client: AsyncWebClient) -> tuple[BotIdentity, AsyncSlackResponse]:
    """Who the bot is (`auth.test` with the one bot token, and its answer); a refused token
    stops start-up."""
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(f"Slack rejected the bot token: {error_code(exc)}") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise translate(exc, "auth.test") from exc
    identity = BotIdentity(
        team_id=str(auth["team_id"]),
        user_id=str(auth["user_id"]),
        bot_id=str(auth.get("bot_id") or ""),
        workspace_url=str(auth.get("url") or "https://slack.com/"),
    )
    log.info("slack connected", extra={"team_id": identity.team_id})
    return identity, auth


async def check_oauth(
    client: AsyncWebClient, oauth: SlackOAuthSettings, redirect_uri: str | None
) -> None:
    """OAuth mode has no token of its own: check the install flow's settings instead."""
    problems = oauth_problems(oauth, redirect_uri)
    if problems:
        raise ConfigError("Slack OAuth: " + "; ".join(problems))
    await check_client(client, oauth)
    log.info("slack ready to be installed", extra={"install_path": INSTALL_PATH})


async def check_app_token(client: AsyncWebClient, token: SecretStr | None) -> None:
    """The Socket Mode client retries a refused token forever: fail start-up instead."""
    if token is None:
        return
    try:
        await client.apps_connections_open(app_token=token.get_secret_value())
    except SlackApiError as exc:
        error = error_code(exc)
        raise ConfigError(f"Slack refused the Socket Mode app token: {error}") from exc


async def usergroup_members(client: AsyncWebClient, groups: Sequence[str]) -> frozenset[str]:
    """Members of the staff user groups (needs usergroups:read); unreadable groups are skipped."""
    members: set[str] = set()
    for group in groups:
        try:
            response = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("slack staff user group %s not readable: %s", group, error_code(exc))
            continue
        users: list[str] = response.get("users", [])
        members.update(users)
    return frozenset(members)
