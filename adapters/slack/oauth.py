"""Slack OAuth mode: install into many workspaces; each call uses its workspace's bot token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.apierrors import error_code
from adapters.slack.authorize import FirstAskShared
from adapters.slack.events import BotIdentity
from adapters.slack.installations import RedisInstallationStore, RedisOAuthStateStore
from adapters.slack.settings import SlackOAuthSettings
from bridge.credentials import secret_problems
from bridge.errors import ConfigError
from bridge.threadmap import RedisClient

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Without these the bridge cannot hear or answer a mention.
REQUIRED_SCOPES = frozenset({"app_mentions:read", "chat:write"})
_CLIENT_ERRORS = frozenset({"invalid_client_id", "bad_client_secret", "invalid_client"})


def oauth_problems(oauth: SlackOAuthSettings, redirect_uri: str | None) -> list[str]:
    """What keeps the install flow from working (pure; `engage-bridge check` reports them)."""
    problems = secret_problems(oauth)
    if not oauth.client_id:
        problems.append("SLACK_CLIENT_ID is empty")
    if oauth.client_secret is None or not oauth.client_secret.get_secret_value():
        problems.append("SLACK_CLIENT_SECRET is missing")
    missing = sorted(REQUIRED_SCOPES - set(oauth.scopes))
    if missing:
        problems.append(f"SLACK_SCOPES lacks {', '.join(missing)}")
    if redirect_uri is None:
        problems.append("no redirect URL: set SLACK_REDIRECT_URI or ENGAGE_BRIDGE_PUBLIC_URL")
    elif not redirect_uri.endswith(REDIRECT_PATH):
        problems.append(f"SLACK_REDIRECT_URI must end with {REDIRECT_PATH}")
    elif not (redirect_uri.startswith("https://") or _is_loopback(redirect_uri)):
        problems.append("SLACK_REDIRECT_URI must be https (Slack refuses plain http)")
    return problems


def _is_loopback(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "http://localhost"))


def redirect_uri_of(oauth: SlackOAuthSettings | None, public_url: str | None) -> str | None:
    if oauth is None:
        return None
    if oauth.redirect_uri:
        return oauth.redirect_uri
    return public_url.rstrip("/") + REDIRECT_PATH if public_url else None


def bolt_app(
    signing: SecretStr | None,
    client: AsyncWebClient,
    oauth: SlackOAuthSettings | None,
    redirect_uri: str | None,
    redis: RedisClient,
) -> tuple[AsyncApp, RedisInstallationStore | None, FirstAskShared | None]:
    """The Bolt app: one bot token, or (OAuth) installations looked up per request, with the
    store and the authorization (whose cached answer for a token Slack refused is dropped).

    Bolt's own signature check is off: every body it dispatches has passed the ingress guard's
    check on the raw bytes (adapters/slack/ingress.py), Socket Mode envelopes are not signed,
    and the OAuth pages take GETs only; a second HMAC per event was waste. Two listener
    middlewares are off too: no listener takes the assistant utilities Bolt attaches to every
    event with a channel (`say`, `set_status`, `say_stream`, ...: built per event, unused), and
    the app defines no custom workflow steps (the function token)."""
    secret = signing.get_secret_value() if signing else None
    if oauth is None:
        return _app(client, secret), None, None
    store = RedisInstallationStore(redis)
    client_secret = oauth.client_secret.get_secret_value() if oauth.client_secret else ""
    # auth.test once per token, not per event (nor per event of a first burst): the store is
    # still read on every request, so an uninstalled workspace is refused at once. bot_only:
    # one read (the bot) per request, not the workspace's installation and then the sender's
    # own (2 when the sender is not the installer); installs ask no user scopes, so there is
    # no user token to find.
    authorize = FirstAskShared(
        installation_store=store,
        bot_only=True,
        client_id=oauth.client_id,
        client_secret=client_secret,
        client=client,
        logger=log,
    )
    app = _app(
        client,
        secret,
        authorize=authorize,
        installation_store=store,
        oauth_settings=_oauth_settings(oauth, client_secret, redirect_uri, store, redis),
    )
    return app, store, authorize


def _app(client: AsyncWebClient, secret: str | None, **oauth: Any) -> AsyncApp:
    return AsyncApp(
        client=client,
        signing_secret=secret,
        request_verification_enabled=False,
        attaching_conversation_kwargs_enabled=False,
        attaching_function_token_enabled=False,
        process_before_response=True,
        **oauth,  # Bolt takes an AsyncAuthorize for `authorize` too
    )


def knows_its_bot(app: AsyncApp, auth: AsyncSlackResponse) -> None:
    """Give Bolt's single-team authorization the `auth.test` answer the adapter got at start.

    Bolt calls `auth.test` on the first request and keeps the answer, but every request that
    arrives before that answer calls it too: a burst on a fresh process made one `auth.test`
    per event (~7 % of the bridge's CPU in a 500-thread burst, each on the acks' path; against
    real Slack, a burst of rate-limited calls). Bolt offers no setting for it; if its internals
    change, nothing is given and Bolt asks on its own as before (tests/test_slack_app.py notices).
    """
    for middleware in getattr(app, "_async_middleware_list", ()):
        unasked = isinstance(middleware, AsyncSingleTeamAuthorization)
        if unasked and middleware.auth_test_result is None:
            middleware.auth_test_result = auth


def _oauth_settings(
    oauth: SlackOAuthSettings,
    secret: str,
    redirect_uri: str | None,
    store: RedisInstallationStore,
    redis: RedisClient,
) -> AsyncOAuthSettings:
    return AsyncOAuthSettings(
        client_id=oauth.client_id,
        client_secret=secret,
        scopes=oauth.scopes,
        redirect_uri=redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=store,
        state_store=RedisOAuthStateStore(redis),
        logger=log,
    )


async def check_client(client: AsyncWebClient, oauth: SlackOAuthSettings) -> None:
    """Ask Slack whether it knows the client id and secret: a made-up code must fail only as a
    code (`invalid_code`), not as a client."""
    secret = oauth.client_secret.get_secret_value() if oauth.client_secret else ""
    try:
        await client.oauth_v2_access(
            client_id=oauth.client_id or "", client_secret=secret, code="engage-bridge-check"
        )
    except SlackApiError as exc:
        error = str(error_code(exc))
        if error in _CLIENT_ERRORS:
            raise ConfigError(f"Slack refused the OAuth client id/secret: {error}") from exc
        return
    raise ConfigError("Slack accepted a made-up OAuth code: is SLACK_API_URL right?")


def team_middleware(store: RedisInstallationStore) -> Callable[..., Awaitable[Any]]:
    """A Bolt middleware recording which installation serves each workspace it hears from, so
    replies (keyed by team) find an org-wide install's token."""
    seen: set[str] = set()

    async def remember(context: AsyncBoltContext, body: dict[str, Any], next: Any) -> Any:
        team = workspace_of(body)
        if team and team not in seen and context.enterprise_id:
            org_wide = bool(context.is_enterprise_install)
            await store.remember_team(team, context.enterprise_id, org_wide=org_wide)
            seen.add(team)
        return await next()

    return remember


def workspace_of(body: dict[str, Any]) -> str | None:
    """The workspace a request comes from (the thread key's), whatever the payload's shape."""
    for candidate in (
        body.get("team_id"),
        (body.get("event") or {}).get("team") if isinstance(body.get("event"), dict) else None,
        (body.get("team") or {}).get("id") if isinstance(body.get("team"), dict) else None,
        (body.get("user") or {}).get("team_id") if isinstance(body.get("user"), dict) else None,
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def identity_of(context: AsyncBoltContext, body: dict[str, Any]) -> BotIdentity:
    """Who the bot is in the workspace of this request, from its installation's auth.test."""
    result = context.authorize_result
    url = result.url if result is not None and result.url else "https://slack.com/"
    return BotIdentity(
        team_id=workspace_of(body) or context.team_id or "",
        user_id=context.bot_user_id or "",
        bot_id=context.bot_id or "",
        workspace_url=url,
    )
