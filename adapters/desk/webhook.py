"""`POST /desk/webhook`: size limit, signature, schema, then the core's durable inbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.desk.schema import InvalidEvent, parse_event, to_event
from adapters.desk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, BadSignature, verify
from bridge.adapter import Inbox
from bridge.errors import StorageUnavailable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 5


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read chunk by chunk; stops reading as soon as it exceeds `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class WebhookEndpoint:
    """The Starlette endpoint; one instance per adapter, bound to the core's inbox."""

    def __init__(self, inbox: Inbox, secret: str, staff_ids: Collection[str] = ()) -> None:
        self._inbox = inbox
        self._secret = secret
        self._staff_ids = frozenset(staff_ids)

    async def handle(self, request: Request) -> JSONResponse:
        try:
            raw = await read_limited(request)
        except BodyTooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            verify(
                self._secret,
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                signature=request.headers.get(SIGNATURE_HEADER),
                body=raw,
                now=time.time(),
            )
        except BadSignature as exc:
            log.warning("desk webhook rejected: %s", exc)
            return _error(401, str(exc))
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
