"""JSON bodies with NaN, Infinity or lone surrogates: FastAPI parses them leniently, then fails
to render its own answer (a 500 found by the route fuzz test); refused here with a 400."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def strict_problem(raw: bytes) -> str | None:
    """Why JSON `raw` cannot be answered about, or None (also for non-JSON: FastAPI's 422)."""
    try:
        value: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeError:
        return "body holds text that is not valid Unicode (a lone surrogate)"
    except (ValueError, RecursionError):
        return "body holds NaN or Infinity, which are not JSON"
    return None


class StrictJsonBodies:
    """ASGI middleware: buffers a request body (the ingress guard caps it) and checks it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        problem = strict_problem(raw) if raw else None
        if problem is not None:
            await JSONResponse({"detail": problem}, status_code=400)(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)
