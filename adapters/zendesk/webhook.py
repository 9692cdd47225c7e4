"""`POST /zendesk/webhook`: behind the ingress guard (size, signature), schema, then the inbox."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.desk.schema import InvalidEvent
from adapters.desk.signing import guard_verifier
from adapters.helpdesk import JSON, MAX_BODY_BYTES, error, submit_all
from adapters.zendesk.events import parse_event, to_event
from adapters.zendesk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from bridge.adapter import Inbox
from bridge.guard import guarded

log = logging.getLogger(__name__)


class ZendeskWebhook:
    def __init__(
        self, inbox: Inbox, secret: str, bot_user_id: str, forward_internal_notes: bool
    ) -> None:
        self._inbox = inbox
        self._secret = secret
        self._bot_user_id = bot_user_id
        self._forward_notes = forward_internal_notes

    def route(self, path: str) -> Route:
        endpoint = guarded(
            self.handle,
            verify=guard_verifier(
                verify,
                self._secret,
                desk="Zendesk",
                timestamp_header=TIMESTAMP_HEADER,
                signature_header=SIGNATURE_HEADER,
            ),
            limit=MAX_BODY_BYTES,
            media_types=JSON,
        )
        return Route(path, endpoint, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        """Behind the guard: the body is within the cap and its signature checked."""
        raw = await request.body()
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
