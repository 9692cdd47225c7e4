"""`POST /zendesk/webhook`: size cap, signature on the raw bytes, schema, then the inbox."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.desk.schema import InvalidEvent
from adapters.desk.signing import BadSignature
from adapters.desk.webhook import MAX_BODY_BYTES, BodyTooLarge, read_limited
from adapters.helpdesk import error, submit_all
from adapters.zendesk.events import parse_event, to_event
from adapters.zendesk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from bridge.adapter import Inbox

log = logging.getLogger(__name__)


class ZendeskWebhook:
    def __init__(
        self, inbox: Inbox, secret: str, bot_user_id: str, forward_internal_notes: bool
    ) -> None:
        self._inbox = inbox
        self._secret = secret
        self._bot_user_id = bot_user_id
        self._forward_notes = forward_internal_notes

    async def handle(self, request: Request) -> JSONResponse:
        try:
            raw = await read_limited(request)
        except BodyTooLarge:
            return error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            verify(
                self._secret,
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                signature=request.headers.get(SIGNATURE_HEADER),
                body=raw,
                now=time.time(),
            )
        except BadSignature as exc:
            log.warning("zendesk webhook rejected: %s", exc)
            return error(401, str(exc))
        try:
            event = parse_event(raw)
            message = to_event(
                event, bot_user_id=self._bot_user_id, forward_internal_notes=self._forward_notes
            )
        except InvalidEvent as exc:
            log.warning("zendesk webhook invalid: %s", exc.field)
            return error(422, f"invalid event: {exc}", field=exc.field)
        # 503 + Retry-After: Zendesk retries those; anything else is final for it.
        response = await submit_all(
            self._inbox, (message,) if message else (), event.id, unavailable_status=503
        )
        log.info("zendesk event %s (%s): %s", event.id, event.type, response.status_code)
        return response
