"""The support-desk adapter: a signed JSON webhook in, signed reply callbacks out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import redis.asyncio as aioredis
from starlette.routing import BaseRoute

from adapters.desk.callback import CallbackSender, RetryPolicy
from adapters.desk.schema import SOURCE
from adapters.desk.settings import DeskSettings
from adapters.desk.webhook import WebhookEndpoint
from bridge.adapter import Inbox
from bridge.config import Settings
from bridge.errors import ConfigError, PermanentPlatformError
from bridge.models import Reply

WEBHOOK_PATH = "/desk/webhook"
_CALLBACK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DeskAdapter:
    """Webhook routes on the bridge's HTTP server; replies go to the desk's callback URL."""

    name = SOURCE

    def __init__(
        self,
        *,
        signing_secret: str,
        callback_url: str | None,
        callback_secret: str | None,
        staff_ids: Sequence[str] = (),
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._signing_secret = signing_secret
        self._staff_ids = tuple(staff_ids)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=_CALLBACK_TIMEOUT)
        self._callback = (
            CallbackSender(callback_url, callback_secret or signing_secret, self._http, retry)
            if callback_url
            else None
        )

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        # Deliveries arrive through `routes`; there is nothing to listen to here.
        await asyncio.Event().wait()

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        endpoint = WebhookEndpoint(inbox, self._signing_secret, self._staff_ids)
        return [endpoint.route(WEBHOOK_PATH)]

    async def send(self, reply: Reply) -> str:
        if self._callback is None:
            raise PermanentPlatformError("desk_callback_url is not configured")
        return await self._callback.send(reply)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def create_adapter(settings: Settings, redis: aioredis.Redis | None = None) -> DeskAdapter:
    """Build the adapter from settings; `redis` is unused (the core stores everything)."""
    desk = settings.platform(DeskSettings)
    if desk.signing_secret is None:
        raise ConfigError("the desk adapter needs ENGAGE_BRIDGE_DESK_SIGNING_SECRET")
    if not desk.callback_url:
        # Without it every answer would be dead-lettered: refuse to start instead.
        raise ConfigError("the desk adapter needs ENGAGE_BRIDGE_DESK_CALLBACK_URL for replies")
    callback_secret = desk.callback_secret
    return DeskAdapter(
        signing_secret=desk.signing_secret.get_secret_value(),
        callback_url=desk.callback_url,
        callback_secret=callback_secret.get_secret_value() if callback_secret else None,
        staff_ids=settings.file.staff.desk_agent_ids,
    )


__all__ = ["WEBHOOK_PATH", "DeskAdapter", "create_adapter"]
