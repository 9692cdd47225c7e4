"""A minimal fake Slack Web API for throughput runs: answers what the bridge calls, keeps nothing.

Unlike tests/fakes/slack.py it stores no messages and no call log (a list scanned per check
costs the load generator more CPU the longer a run lasts); it counts calls per method and
reports each posted reply's thread to a callback, with the time it arrived.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serve

TEAM_ID = "T0001"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_TOKEN = "xoxb-fake-bot-token"  # noqa: S105
SIGNING_SECRET = "fake-signing-secret"  # noqa: S105

AUTH_TEST = {
    "ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "engage",
    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False,
}  # fmt: skip


Callback = Callable[[str, float], None]


class LeanSlack:
    """`on_reply(thread_ts, arrived)` is called for every chat.postMessage, `on_status` for
    every assistant.threads.setStatus."""

    def __init__(self, on_reply: Callback, on_status: Callback | None = None) -> None:
        self.on_reply = on_reply
        self.on_status = on_status
        self.calls: Counter[str] = Counter()
        self.port = 0
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        self._runner, self.port = await serve(app, handle_signals=False, access_log=None)

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls[method] += 1
        if method == "auth.test":
            return web.json_response(AUTH_TEST)
        if method == "assistant.threads.setStatus" and self.on_status is not None:
            args = await _read_args(request)
            self.on_status(str(args.get("thread_ts")), time.perf_counter())
        if method != "chat.postMessage":
            return web.json_response({"ok": True})
        args = await _read_args(request)
        self.on_reply(str(args.get("thread_ts")), time.perf_counter())
        ts = f"1800000000.{next(self._ts):06d}"
        return web.json_response({"ok": True, "channel": args.get("channel"), "ts": ts})


async def _read_args(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body: dict[str, Any] = await request.json()
        return body
    return dict(await request.post())
