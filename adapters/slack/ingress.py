"""Slack over HTTP behind the ingress guard: cap, signature on raw bytes, safe parse, then Bolt
(or, for a plain message event in one workspace, the message listener directly)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slack_bolt.adapter.starlette.async_handler import (
    to_async_bolt_request,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncApp
from slack_bolt.request import payload_utils
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from starlette.requests import Request
from starlette.responses import Response

from adapters.slack.plain_events import plain_message
from adapters.slack.signing import verifier
from bridge.errors import StorageUnavailable
from bridge.guard import BadRequest, guarded_raw
from bridge.http import DirectRoute

log = logging.getLogger(__name__)

# Events come as JSON; slash commands and interactivity as forms (with a `payload` field).
MEDIA_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded"})
# Slack's own payloads are a few KB (a message's text is at most 40,000 characters).
MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 5
# What Bolt's parsing and context extraction raise for bodies that are not Slack's shapes.
_SHAPE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)
# Bolt builds every listener's (and its error handler's) arguments with these: a body they
# choke on (`"actions": []`) would fail even the error handler, so they are tried first.
_PAYLOAD_VIEWS = (
    payload_utils.to_options,
    payload_utils.to_shortcut,
    payload_utils.to_action,
    payload_utils.to_view,
    payload_utils.to_command,
    payload_utils.to_event,
    payload_utils.to_message,
    payload_utils.to_step,
)
# Bolt skips every listener's own work for a request with this header (its lazy listeners'
# second invocation); such a request is left to Bolt.
_LAZY_ONLY_HEADER = "x-slack-bolt-lazy-only"

# The message listener's work for a plain message body (`plain_events`): None once it is acked,
# else the answer Bolt would give (its error handler's).
PlainListener = Callable[[dict[str, Any]], Awaitable[BoltResponse | None]]
# Bolt's ack of an event, built once: a Starlette response only reads its fields when it is sent.
_ACKED = to_starlette_response(BoltResponse(status=200))


def bolt_request(request: Request, raw: bytes) -> AsyncBoltRequest:
    """Bolt's request for a verified body; BadRequest where Bolt's own parsing would raise."""
    try:
        bolt = to_async_bolt_request(request, raw)
        if not isinstance(bolt.body, dict):
            raise BadRequest("not a Slack payload (not an object)")
        for view in _PAYLOAD_VIEWS:
            view(bolt.body)
    except _SHAPE_ERRORS as exc:
        raise BadRequest(f"not a Slack payload ({type(exc).__name__})") from None
    return bolt


async def on_error(error: Exception) -> BoltResponse:
    """Bolt's error handler: the status a failed listener (or Bolt middleware) answers.

    Storage trouble is 503 with Retry-After (Slack redelivers; Socket Mode leaves the envelope
    unacknowledged), like the desk and the playground. Anything else came from a payload our
    listeners cannot take: 400 and one line, not Bolt's 500 with a traceback.
    """
    if isinstance(error, StorageUnavailable):
        log.warning("slack event not stored: %s", error)
        headers: dict[str, str | Sequence[str]] = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return BoltResponse(status=503, body="storage unavailable, retry later", headers=headers)
    # Only the type: exception messages can quote the payload's text.
    log.error(
        "slack request failed: %s", type(error).__name__, exc_info=log.isEnabledFor(logging.DEBUG)
    )
    return BoltResponse(status=400, body="request not processed")


class SlackIngress:
    """The guarded HTTP entry into a Bolt app; `route(path)` for each Slack request URL.

    Register `on_error` with the app (`app.error(on_error)`) for the statuses of failed listeners.
    With `plain`, a plain message or mention event (`plain_events.plain_message`) goes to it
    instead of Bolt's dispatch (~60 µs of an ack's CPU); `plain` must do what Bolt's dispatch
    of that body would: only for one workspace's bot token (no installations to look up).
    """

    def __init__(
        self, app: AsyncApp, signing_secret: str, plain: PlainListener | None = None
    ) -> None:
        self._app = app
        self._verify = verifier(signing_secret)
        self._plain = plain

    def route(self, path: str) -> DirectRoute:
        endpoint = guarded_raw(
            self.handle, verify=self._verify, limit=MAX_BODY_BYTES, media_types=MEDIA_TYPES
        )
        return DirectRoute(path, endpoint)

    async def handle(self, request: Request, raw: bytes) -> Response:
        if self._plain is not None and _LAZY_ONLY_HEADER not in request.headers:
            body = plain_message(raw)
            if body is not None:
                failed = await self._plain(body)
                return _ACKED if failed is None else to_starlette_response(failed)
        bolt = bolt_request(request, raw)
        return to_starlette_response(await self._app.async_dispatch(bolt))
