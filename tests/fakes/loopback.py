"""Serving a fake's aiohttp app on 127.0.0.1 at an ephemeral port."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def serve(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, int]:
    """The started runner (clean it up to stop serving) and the port the OS picked."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])
