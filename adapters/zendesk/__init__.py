"""The Zendesk adapter: ticket events in (signed webhooks), public comments out (Ticketing API)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import redis.asyncio as aioredis
from starlette.routing import BaseRoute

from adapters.helpdesk import DeskApi, RetryPolicy, is_desk_state_change, is_quiet_notice
from adapters.zendesk.api import Ticketing
from adapters.zendesk.events import SOURCE
from adapters.zendesk.settings import ZendeskSettings
from adapters.zendesk.webhook import ZendeskWebhook
from bridge.adapter import Inbox
from bridge.config import Settings
from bridge.credentials import require_strong_secrets
from bridge.errors import ConfigError
from bridge.lifecycle import RESOLVED
from bridge.models import Reply, ReplyKind, ThreadKey

WEBHOOK_PATH = "/zendesk/webhook"
_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class ZendeskAdapter:
    """Agent answers are public comments by the bot user; notices are internal notes."""

    name = SOURCE

    def __init__(
        self,
        config: ZendeskSettings,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if config.webhook_secret is None or config.api_token is None:
            raise ConfigError(
                "the zendesk adapter needs ZENDESK_WEBHOOK_SECRET and ZENDESK_API_TOKEN"
            )
        if not (config.url and config.email and config.bot_user_id):
            raise ConfigError(
                "the zendesk adapter needs ZENDESK_URL, ZENDESK_EMAIL, ZENDESK_BOT_USER_ID"
            )
        require_strong_secrets(config)
        self._config = config
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=_TIMEOUT)
        api = DeskApi("Zendesk", self._http, retry)
        self._tickets = Ticketing(
            config.url, config.email, config.api_token.get_secret_value(), config.bot_user_id, api
        )

    async def start(self) -> None:
        """Check the API token: `engage-bridge check` reports a wrong one here."""
        await self._tickets.me()

    async def run(self, inbox: Inbox) -> None:
        await asyncio.Event().wait()  # deliveries arrive through `routes`

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        assert self._config.webhook_secret is not None
        endpoint = ZendeskWebhook(
            inbox,
            self._config.webhook_secret.get_secret_value(),
            self._config.bot_user_id,
            self._config.forward_internal_notes,
        )
        return [endpoint.route(WEBHOOK_PATH)]

    async def send(self, reply: Reply) -> str:
        if is_quiet_notice(reply):
            return f"quiet:{reply.idempotency_key}"
        public = reply.kind is ReplyKind.AGENT
        return await self._tickets.comment(reply.thread.thread, reply.text, public=public)

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None:
        """A refused command's reason: a public comment, which in a ticket only its requester
        (and the team) sees."""
        await self._tickets.comment(thread.thread, text, public=True)

    async def mirror_status(self, thread: ThreadKey, status: str, cause: str) -> None:
        # Changes made in Zendesk are there already; a `resolve` typed in the ticket solves it.
        if status == RESOLVED and self._config.solve_on_resolve and not is_desk_state_change(cause):
            await self._tickets.set_status(thread.thread, "solved")

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def create_adapter(
    settings: Settings, redis: aioredis.Redis | None = None, config: ZendeskSettings | None = None
) -> ZendeskAdapter:
    """Build the adapter from its own `ZENDESK_*` settings (`config` overrides them in tests)."""
    return ZendeskAdapter(config or settings.platform(ZendeskSettings))


__all__ = ["WEBHOOK_PATH", "ZendeskAdapter", "create_adapter"]
