"""Serving a fake's aiohttp app on 127.0.0.1 at an ephemeral port."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
from aiohttp import web


async def serve(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, int]:
    """The started runner (clean it up to stop serving) and the port the OS picked."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


class SideEffects:
    """A desk fake's server, its client for calling us back, and the deliveries still running.

    Desks answer an API call first and deliver the events it causes afterwards; `idle()` waits
    until every such delivery has been made, so tests never poll a private task set.
    """

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, app: web.Application) -> str:
        self._runner, port = await serve(app)
        self._http = httpx.AsyncClient(timeout=10.0)
        return f"http://127.0.0.1:{port}"

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None, "start() the fake first"
        return self._http

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.idle()
        if self._http is not None:
            await self._http.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
