"""`POST /chatwoot/webhook/{token}`: token, source, size cap, signature, schema, then the inbox."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse

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
from adapters.desk.signing import BadSignature
from adapters.desk.webhook import MAX_BODY_BYTES, BodyTooLarge, read_limited
from adapters.helpdesk import error, submit_all
from bridge.adapter import Inbox, StatusInbox
from bridge.errors import StorageUnavailable

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

    async def handle(self, request: Request) -> JSONResponse:
        try:
            check_token(self._token, request.path_params.get("token", ""))
            check_source(self._allowed, request.client.host if request.client else None)
        except Forbidden as exc:
            log.warning("chatwoot webhook refused: %s", exc)
            return error(403, str(exc))
        try:
            raw = await read_limited(request)
        except BodyTooLarge:
            return error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        if self._secret is not None:
            try:
                verify(
                    self._secret,
                    timestamp=request.headers.get(TIMESTAMP_HEADER),
                    signature=request.headers.get(SIGNATURE_HEADER),
                    body=raw,
                    now=time.time(),
                )
            except BadSignature as exc:
                log.warning("chatwoot webhook rejected: %s", exc)
                return error(401, str(exc))
        # Kept across Chatwoot's retries; without it (before v4.13) the body is: retries resend
        # the payload built once when the event happened.
        delivery = request.headers.get(DELIVERY_HEADER) or hashlib.sha256(raw).hexdigest()[:32]
        try:
            event = parse_event(raw)
            status = await self._bridge_status(event)
            messages = to_events(
                event,
                delivery=delivery[:100],
                bridge_status=status,
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
