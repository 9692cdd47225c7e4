"""`POST /desk/webhook`: behind the ingress guard (size, signature), schema, then the inbox."""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.desk.schema import InvalidEvent, parse_event, to_event
from adapters.desk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, guard_verifier, verify
from bridge.adapter import Inbox
from bridge.errors import StorageUnavailable
from bridge.guard import BodyTooLarge, Verifier, guarded, read_body

__all__ = ["MAX_BODY_BYTES", "BodyTooLarge", "WebhookEndpoint", "read_limited", "verifier"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 5


async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Kept for callers that read bodies themselves; new routes use `bridge.guard.guarded`."""
    return await read_body(request, limit)


def verifier(secret: str) -> Verifier:
    """The guard's verifier for the desk's `X-Desk-Signature`; an empty secret verifies nothing."""
    return guard_verifier(
        verify,
        secret,
        desk="desk",
        timestamp_header=TIMESTAMP_HEADER,
        signature_header=SIGNATURE_HEADER,
    )


def _error(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class WebhookEndpoint:
    """The Starlette endpoint; one instance per adapter, bound to the core's inbox."""

    def __init__(self, inbox: Inbox, secret: str, staff_ids: Collection[str] = ()) -> None:
        self._inbox = inbox
        self._secret = secret
        self._staff_ids = frozenset(staff_ids)

    def route(self, path: str) -> Route:
        endpoint = guarded(self.handle, verify=verifier(self._secret), limit=MAX_BODY_BYTES)
        return Route(path, endpoint, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        """Behind the guard: the body is within the cap and its signature checked."""
        raw = await request.body()
        try:
            event = parse_event(raw)
            message = to_event(event, staff_ids=self._staff_ids)
        except InvalidEvent as exc:
            return _error(422, f"invalid event: {exc}", field=exc.field)
        if message is None:
            log.info("desk webhook ignored unknown event type %r", event.type)
            return JSONResponse({"status": "ignored", "event_id": event.id}, status_code=202)
        try:
            result = await self._inbox.submit(message)
        except StorageUnavailable:
            log.warning("desk webhook could not store event %s", event.id)
            response = _error(503, "storage unavailable, retry later")
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        status = result.extra.get("outcome") or ("accepted" if result.accepted else "ignored")
        log.info("desk event %s (%s) %s", event.id, event.type, status)
        return JSONResponse({"status": status, "event_id": event.id})
