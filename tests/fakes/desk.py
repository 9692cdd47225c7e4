"""A fake helpdesk that receives signed reply callbacks on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.desk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, BadSignature, verify
from tests.fakes.loopback import serve


@dataclass
class FakeDesk:
    """Verifies each callback's signature and records it; can fail on purpose.

    `fail_next` answers that many requests with `fail_status` before succeeding;
    `reject_status` (a 4xx) refuses every request for good.
    """

    secret: str
    fail_next: int = 0
    fail_status: int = 503
    reject_status: int | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    bad_signatures: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        self._runner, port = await serve(app)
        self.url = f"http://127.0.0.1:{port}/callback"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self._changed:
            self.attempts += 1
            self._changed.notify_all()
        try:
            verify(
                self.secret,
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                signature=request.headers.get(SIGNATURE_HEADER),
                body=body,
                now=time.time(),
            )
        except BadSignature as exc:
            self.bad_signatures += 1
            return web.json_response({"error": str(exc)}, status=401)
        if self.reject_status is not None:
            return web.json_response({"error": "rejected"}, status=self.reject_status)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "try again"}, status=self.fail_status)
        payload = json.loads(body)
        payload["_idempotency_key"] = request.headers.get("Idempotency-Key")
        async with self._changed:
            self.callbacks.append(payload)
            self._changed.notify_all()
        return web.json_response({"id": f"comment-{len(self.callbacks)}"})

    async def wait_for_callbacks(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.callbacks) >= count)
        return list(self.callbacks)
