"""`POST /chatwoot/webhook/{token}`: token and source first, then the ingress guard (size,
signature when configured), schema, and the inbox."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.chatwoot.auth import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Forbidden,
    check_source,
    check_token,
    verify,
)
from adapters.chatwoot.events import BotEvent, parse_event, thread_key, to_events
from adapters.desk.schema import InvalidEvent
from adapters.desk.signing import guard_verifier
from adapters.helpdesk import JSON, MAX_BODY_BYTES, error, submit_all
from bridge.adapter import Inbox, StatusInbox
from bridge.errors import StorageUnavailable
from bridge.guard import guarded

log = logging.getLogger(__name__)


class ChatwootWebhook:
    def __init__(
        self,
        inbox: Inbox,
        *,
        token: str,
        secret: str | None,
        allowed_sources: Sequence[str],
        default_account: str,
        forward_private_notes: bool,
    ) -> None:
        self._inbox = inbox
        self._token = token
        self._secret = secret
        self._allowed = tuple(allowed_sources)
        self._default_account = default_account
        self._forward_notes = forward_private_notes

    def route(self, path: str) -> Route:
        verify_signature = (
            guard_verifier(
                verify,
                self._secret,
                desk="Chatwoot",
                timestamp_header=TIMESTAMP_HEADER,
                signature_header=SIGNATURE_HEADER,
            )
            if self._secret
            else None
        )
        inner = guarded(
            self.handle, verify=verify_signature, limit=MAX_BODY_BYTES, media_types=JSON
        )

        async def endpoint(request: Request) -> Response:
            # Before the body is read: a wrong token or address costs us nothing.
            try:
                check_token(self._token, request.path_params.get("token", ""))
                check_source(self._allowed, request.client.host if request.client else None)
            except Forbidden as exc:
                log.warning("chatwoot webhook refused: %s", exc)
                return error(403, str(exc))
            return await inner(request)

        return Route(path, endpoint, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        """Behind the guard: token, source, size and (when configured) signature are checked."""
        raw = await request.body()
        # Kept across Chatwoot's retries; without it (before v4.13) the body is: retries resend
        # the payload built once when the event happened.
        delivery = request.headers.get(DELIVERY_HEADER) or hashlib.sha256(raw).hexdigest()[:32]
        try:
            event = parse_event(raw)
            messages = to_events(
                event,
                delivery=delivery[:100],
                bridge_status=await self._bridge_status(event),
                default_account=self._default_account,
                forward_private_notes=self._forward_notes,
            )
        except InvalidEvent as exc:
            log.warning("chatwoot webhook invalid: %s", exc.field)
            return error(422, f"invalid event: {exc}", field=exc.field)
        except StorageUnavailable:
            return error(500, "storage unavailable, retry later")
        # 500, not 503: Chatwoot retries an agent bot's 429 and 500 only, and on any other
        # failure hands a pending conversation to the humans at once.
        response = await submit_all(self._inbox, messages, delivery, unavailable_status=500)
        log.info("chatwoot event %s (%s): %s", delivery, event.event, response.status_code)
        return response

    async def _bridge_status(self, event: BotEvent) -> str | None:
        """The bridge's status of a message's conversation (None: unknown or not asked)."""
        account = event.account.id if event.account else self._default_account
        if event.event != "message_created" or event.conversation is None or not account:
            return None
        if not isinstance(self._inbox, StatusInbox):
            return None
        return await self._inbox.thread_status(thread_key(account, event.conversation.id))
