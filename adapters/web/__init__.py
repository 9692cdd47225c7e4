"""The web adapter: a local playground to chat with agents, and an operator view of threads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.web.operator import (
    ConversationHistory,
    HasEngage,
    OperatorViews,
    ThreadDirectory,
)
from adapters.web.playground import SOURCE, PlaygroundApi, ThreadRecords
from adapters.web.store import Entry, RedisClient, TranscriptStore
from bridge.adapter import Inbox
from bridge.config import Settings
from bridge.errors import PlatformError, StorageUnavailable
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.threadmap import ThreadMap

PLAYGROUND_PATH = "/playground"
OPERATOR_PATH = "/operator"
_STATIC_TYPES = {
    "style.css": "text/css",
    "playground.js": "text/javascript",
    "playground.html": "text/html",
}


def static_file(name: str) -> str:
    # Next to the modules, so pyproject's package-data globs ship them in the wheel.
    return resources.files("adapters.web").joinpath(name).read_text(encoding="utf-8")


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC_TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        static_file(name),
        media_type=_STATIC_TYPES[name],
        headers={"Cache-Control": "no-cache"},
    )


async def _playground_page(request: Request) -> Response:
    return HTMLResponse(static_file("playground.html"), headers={"Cache-Control": "no-cache"})


class WebAdapter:
    """Replies and status lines go to Redis; the page polls them from any bridge process."""

    name = SOURCE

    def __init__(
        self,
        store: TranscriptStore,
        threads: ThreadDirectory,
        history: ConversationHistory | None = None,
    ) -> None:
        self.store = store
        self._threads = threads
        self._history = history

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        # Browsers talk to `routes`; there is nothing to listen to here.
        await asyncio.Event().wait()

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        records: ThreadRecords = self._threads
        api = PlaygroundApi(inbox, self.store, records)
        history = self._history or (inbox.engage if isinstance(inbox, HasEngage) else None)
        views = OperatorViews(self._threads, history)
        base = f"{PLAYGROUND_PATH}/api/threads"
        return [
            Route(PLAYGROUND_PATH, _playground_page, methods=["GET"]),
            Route(base, api.create, methods=["POST"]),
            Route(f"{base}/{{thread_id}}", api.poll, methods=["GET"]),
            Route(f"{base}/{{thread_id}}/messages", api.post_message, methods=["POST"]),
            Route(f"{base}/{{thread_id}}/commands", api.post_command, methods=["POST"]),
            Route(OPERATOR_PATH, views.list_threads, methods=["GET"]),
            Route(f"{OPERATOR_PATH}/threads/{{thread_key}}", views.show_thread, methods=["GET"]),
            Route("/web/static/{name}", _static, methods=["GET"]),
        ]

    async def send(self, reply: Reply) -> str:
        role = "notice" if reply.kind is ReplyKind.NOTICE else "agent"
        entry = Entry(role=role, text=reply.text, name=reply.agent)
        try:
            position = await self.store.append(reply.thread, reply.idempotency_key, entry)
        except StorageUnavailable as exc:
            raise PlatformError(f"web transcript not written: {exc}") from exc
        return f"web-{position}"

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        try:
            await self.store.set_status(thread, status)
        except StorageUnavailable as exc:
            raise PlatformError(f"web status not written: {exc}") from exc

    async def aclose(self) -> None:
        return None


def create_adapter(settings: Settings, redis: RedisClient) -> WebAdapter:
    ttl = settings.thread_idle_ttl_seconds
    threads = ThreadMap(redis, idle_ttl_seconds=ttl)
    return WebAdapter(TranscriptStore(redis, ttl_seconds=ttl), threads)


__all__ = ["OPERATOR_PATH", "PLAYGROUND_PATH", "WebAdapter", "create_adapter"]
