"""The Chatwoot adapter: an Agent Bot connected to an inbox; events in, account API out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import redis.asyncio as aioredis
from starlette.routing import BaseRoute

from adapters.chatwoot.api import Conversations
from adapters.chatwoot.events import OPEN, PENDING, RESOLVED, SOURCE
from adapters.chatwoot.settings import ChatwootSettings
from adapters.chatwoot.webhook import ChatwootWebhook
from adapters.helpdesk import DeskApi, RetryPolicy, is_desk_state_change, is_quiet_notice
from bridge import lifecycle
from bridge.adapter import Inbox
from bridge.config import Settings
from bridge.credentials import MIN_SIGNING_SECRET, require_strong_secrets
from bridge.errors import ConfigError
from bridge.models import Reply, ReplyKind, ThreadKey

WEBHOOK_PATH = "/chatwoot/webhook/{token}"
_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# The bridge's hand-off status -> the conversation status Chatwoot should show.
_CHATWOOT_STATUS = {lifecycle.BOT: PENDING, lifecycle.HUMAN: OPEN, lifecycle.RESOLVED: RESOLVED}


class ChatwootAdapter:
    """Agent answers are outgoing messages by the bot; notices are private notes."""

    name = SOURCE

    def __init__(
        self,
        config: ChatwootSettings,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if config.webhook_token is None or config.bot_token is None or not config.url:
            raise ConfigError(
                "the chatwoot adapter needs CHATWOOT_WEBHOOK_TOKEN, CHATWOOT_BOT_TOKEN and "
                "CHATWOOT_URL"
            )
        require_strong_secrets(config)
        if len(config.webhook_token.get_secret_value()) < MIN_SIGNING_SECRET:
            # The URL token is this route's only defence before Chatwoot 4.13.
            raise ConfigError(
                f"CHATWOOT_WEBHOOK_TOKEN needs at least {MIN_SIGNING_SECRET} characters"
            )
        self._config = config
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=_TIMEOUT)
        api = DeskApi("Chatwoot", self._http, retry)
        self._conversations = Conversations(config.url, config.bot_token.get_secret_value(), api)

    async def start(self) -> None:
        """Check the bot's token (`engage-bridge check`) when the account id is known."""
        if self._config.account_id:
            await self._conversations.check_token(self._config.account_id)

    async def run(self, inbox: Inbox) -> None:
        await asyncio.Event().wait()  # deliveries arrive through `routes`

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        config = self._config
        assert config.webhook_token is not None
        secret = config.webhook_secret.get_secret_value() if config.webhook_secret else None
        endpoint = ChatwootWebhook(
            inbox,
            token=config.webhook_token.get_secret_value(),
            secret=secret,
            allowed_sources=config.allowed_sources,
            default_account=config.account_id,
            forward_private_notes=config.forward_private_notes,
        )
        return [endpoint.route(WEBHOOK_PATH)]

    async def send(self, reply: Reply) -> str:
        if is_quiet_notice(reply):
            return f"quiet:{reply.idempotency_key}"
        thread = reply.thread
        private = reply.kind is ReplyKind.NOTICE
        return await self._conversations.post_message(
            thread.workspace, thread.thread, reply.text, private=private
        )

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None:
        """A refused command's reason: a message in the conversation, which only its contact
        (and the team) sees."""
        await self._conversations.post_message(thread.workspace, thread.thread, text, private=False)

    async def mirror_status(self, thread: ThreadKey, status: str, cause: str) -> None:
        """Chatwoot keeps a conversation `pending` while its bot handles it; a hand-off opens
        it (a human's reply alone does not), resolving resolves it."""
        target = _CHATWOOT_STATUS.get(status)
        if target is None or is_desk_state_change(cause):
            return  # changed in Chatwoot itself: it is there already
        await self._conversations.toggle_status(thread.workspace, thread.thread, target)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def create_adapter(
    settings: Settings, redis: aioredis.Redis | None = None, config: ChatwootSettings | None = None
) -> ChatwootAdapter:
    """Build the adapter from its own `CHATWOOT_*` settings (`config` overrides them in tests)."""
    return ChatwootAdapter(config or settings.platform(ChatwootSettings))


__all__ = ["WEBHOOK_PATH", "ChatwootAdapter", "create_adapter"]
