"""The ingress guard: every HTTP body is capped, timed and verified before anything parses it.

    GuardRejected (BridgeError)   a request refused at the edge; `status` is its 4xx
    ├── BadRequest                400 malformed: not JSON, not an object, nested too deep, bad form
    ├── BadSignature              401 unsigned, wrongly signed, or outside the replay window
    ├── SlowBody                  408 the body did not arrive within the read timeout
    ├── BodyTooLarge              413 larger than the cap (declared or counted while streaming)
    ├── UnsupportedMediaType      415 a Content-Type the route does not take
    └── Unprocessable             422 well formed, but not what the route expects

Two layers. `IngressGuard` (ASGI middleware around the whole app, `bridge.http.create_app`)
refuses a declared Content-Length above the cap before the app runs, counts chunked bodies as
they stream, and gives every body a read deadline. `guarded(endpoint, ...)` wraps one route:
media type, the route's own cap, the adapter's verifier on the raw bytes, then the endpoint gets
a request whose body is already read; a `GuardRejected` the endpoint raises (`json_object`,
`form_fields`) becomes its 4xx. Every refusal is one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import BridgeError

log = logging.getLogger(__name__)

# Slack's, the desk's and the playground's payloads are far below this; a body is held in memory
# once, so the cap bounds what one request can cost.
DEFAULT_LIMIT = 1024 * 1024
# A sender that trickles a body holds a connection and a task; a real webhook arrives in
# milliseconds, and Slack itself gives up after 3 s.
READ_TIMEOUT_SECONDS = 10.0
MAX_FORM_FIELDS = 1000

Endpoint = Callable[[Request], Awaitable[Response]]
# An endpoint given its request (whose body has been read) and that body.
RawEndpoint = Callable[[Request, bytes], Awaitable[Response]]
# Raises BadSignature unless the raw `body` is signed for these headers at `now` (unix seconds).
Verifier = Callable[[Headers, bytes, float], None]


class GuardRejected(BridgeError):
    status = 400


class BadRequest(GuardRejected):
    status = 400


class BadSignature(GuardRejected):
    status = 401


class SlowBody(GuardRejected):
    status = 408


class BodyTooLarge(GuardRejected):
    status = 413


class UnsupportedMediaType(GuardRejected):
    status = 415


class Unprocessable(GuardRejected):
    status = 422


def rejection(scope: Scope, exc: GuardRejected) -> Response:
    """The 4xx for `exc`, logged as one line (method, path, status, reason; never the body)."""
    log.warning("refused %s %s: %d %s", scope.get("method"), scope.get("path"), exc.status, exc)
    # A body too slow to arrive: end its connection with the answer rather than keep it (and a
    # connection slot) for keep-alive. Not for 413: uvicorn has no lingering close, so a client
    # still sending a large body would get a reset instead of reading the 413.
    headers = {"Connection": "close"} if isinstance(exc, SlowBody) else None
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)


def declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest("Content-Length is not a number")
    return int(value)


def check_media_type(headers: Headers, media_types: Collection[str]) -> str:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in media_types:
        raise UnsupportedMediaType(f"Content-Type must be one of {', '.join(sorted(media_types))}")
    return media_type


async def read_body(request: Request, limit: int = DEFAULT_LIMIT) -> bytes:
    """The body, chunk by chunk; refused as soon as it is declared or found larger than `limit`."""
    declared = declared_length(request.headers)
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object; BadRequest for anything else (arrays, bad UTF-8, deep nesting)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("body is not a JSON object")
    return value


def form_fields(raw: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body; the last value of a repeated field wins."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # bad UTF-8 or too many fields
        raise BadRequest("body is not a form") from None
    return dict(pairs)


def _replay(raw: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return receive


def guarded(
    endpoint: Endpoint,
    *,
    verify: Verifier | None = None,
    limit: int = DEFAULT_LIMIT,
    media_types: Collection[str] | None = None,
) -> Endpoint:
    """`endpoint` behind the guard: media type, cap, `verify` on the raw bytes, then the call.

    The endpoint reads the body as usual (`await request.body()`, `.json()`, `.form()`): it
    is served from memory. Raise a GuardRejected (or use `json_object`/`form_fields`) for a 4xx.
    """

    async def with_body(request: Request, raw: bytes) -> Response:
        return await endpoint(Request(request.scope, _replay(raw)))

    return guarded_raw(with_body, verify=verify, limit=limit, media_types=media_types)


def guarded_raw(
    endpoint: RawEndpoint,
    *,
    verify: Verifier | None = None,
    limit: int = DEFAULT_LIMIT,
    media_types: Collection[str] | None = None,
) -> Endpoint:
    """`guarded` for an endpoint that takes the checked raw body as an argument (no second
    request object to read it from again)."""

    async def guarded_endpoint(request: Request) -> Response:
        try:
            if media_types is not None:
                check_media_type(request.headers, media_types)
            raw = await read_body(request, limit)
            if verify is not None:
                verify(request.headers, raw, time.time())
            return await endpoint(request, raw)
        except GuardRejected as exc:
            return rejection(request.scope, exc)

    return guarded_endpoint


class _Body:
    """`receive` with a cap and a deadline, until the body is complete."""

    __slots__ = ("_receive", "complete", "deadline", "limit", "refused", "size")

    def __init__(self, receive: Receive, limit: int, deadline: float) -> None:
        self._receive = receive
        self.limit = limit
        self.deadline = deadline
        self.size = 0
        self.complete = False
        self.refused: GuardRejected | None = None

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            self.refused = SlowBody("body not received in time")
            raise self.refused from None
        if message["type"] != "http.request":
            self.complete = True
            return message
        self.size += len(message.get("body", b""))
        if self.size > self.limit:
            self.refused = BodyTooLarge(f"body larger than {self.limit} bytes")
            raise self.refused
        self.complete = not message.get("more_body", False)
        return message


class IngressGuard:
    """ASGI middleware: a cap and a read deadline on every request body, refusals as 4xx.

    `limits` maps path prefixes to their own cap (the longest matching prefix wins). When a
    body is refused mid-read, whatever the app tries to answer (a mounted app's 500 handler)
    is replaced by the 4xx, and the exception ends here.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int = DEFAULT_LIMIT,
        limits: Mapping[str, int] | None = None,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.limit = limit
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))
        self.read_timeout = read_timeout

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        try:
            declared = declared_length(Headers(scope=scope))
            if declared is not None and declared > limit:
                raise BodyTooLarge(f"body larger than {limit} bytes")
        except GuardRejected as exc:
            await rejection(scope, exc)(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        body = _Body(receive, limit, deadline)
        started = replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                started = True
                if body.refused is not None and message["status"] >= 500:
                    # An app that turned the refusal into a 500 (a mounted app's error handler).
                    replaced = True
                    await rejection(scope, body.refused)(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, body.receive, guarded_send)
        except GuardRejected as exc:
            if not started:
                await rejection(scope, body.refused or exc)(scope, receive, send)
        except Exception:
            if body.refused is None:
                raise
            if not started:
                await rejection(scope, body.refused)(scope, receive, send)
