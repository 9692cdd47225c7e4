"""The operator view: every thread the bridge knows, and each conversation's history."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import HTMLResponse

from adapters.web.pages import ThreadRow, not_found_page, thread_page, threads_page
from bridge.core import GONE_NOTE
from bridge.engage.errors import EngageError, NotFound
from bridge.engage.models import ConversationReadFull, FeedbackRead, MessageRead
from bridge.errors import StorageUnavailable
from bridge.inbox import storage
from bridge.models import ThreadKey

log = logging.getLogger(__name__)

MAX_THREADS_LISTED = 500


class ThreadDirectory(Protocol):
    """The core's thread records (bridge.threadmap.ThreadMap fits)."""

    async def get(self, thread: ThreadKey | str) -> ThreadRow | None: ...

    async def list(self, limit: int = ...) -> Sequence[ThreadRow]: ...


class ConversationHistory(Protocol):
    """What the history page reads from Engage Smarter (bridge.engage.client.EngageClient fits)."""

    async def get_conversation(self, conversation_id: str) -> ConversationReadFull: ...

    async def get_messages(self, conversation_id: str) -> list[MessageRead]: ...

    async def get_conversation_feedback(self, conversation_id: str) -> list[FeedbackRead]: ...


@runtime_checkable
class HasEngage(Protocol):
    """The core's Bridge, handed to `routes` as the inbox, carries its Engage Smarter client."""

    @property
    def engage(self) -> ConversationHistory: ...


class OperatorViews:
    def __init__(self, directory: ThreadDirectory, history: ConversationHistory | None) -> None:
        self._directory = directory
        self._history = history

    async def list_threads(self, request: Request) -> HTMLResponse:
        try:
            async with storage("operator thread list"):
                rows = await self._directory.list(MAX_THREADS_LISTED)
        except StorageUnavailable as exc:
            return HTMLResponse(f"storage unavailable: {exc}", status_code=503)
        return HTMLResponse(threads_page(rows, signed_in=_signed_in(request)))

    async def show_thread(self, request: Request) -> HTMLResponse:
        key = request.path_params["thread_key"]
        try:
            async with storage("operator thread"):
                row = await self._directory.get(key)
        except StorageUnavailable as exc:
            return HTMLResponse(f"storage unavailable: {exc}", status_code=503)
        except ValueError:
            row = None
        if row is None:
            return HTMLResponse(not_found_page(key), status_code=404)
        signed_in = _signed_in(request)
        if self._history is None:
            problem = "no Engage Smarter client here"
            return HTMLResponse(thread_page(row, None, [], problem, signed_in=signed_in))
        try:
            conversation = await self._history.get_conversation(row.conversation_id)
            messages = await self._history.get_messages(row.conversation_id)
            given = await self._history.get_conversation_feedback(row.conversation_id)
        except NotFound:
            return HTMLResponse(thread_page(row, None, [], GONE_NOTE, signed_in=signed_in))
        except EngageError as exc:
            log.warning("operator view could not read conversation history: %s", exc)
            page = thread_page(row, None, [], type(exc).__name__, signed_in=signed_in)
            return HTMLResponse(page, status_code=502)
        feedback = {f.run_id: f for f in given}
        page = thread_page(row, conversation, messages, signed_in=signed_in, feedback=feedback)
        return HTMLResponse(page)


def _signed_in(request: Request) -> bool:
    # Set by the gate: the browser holds the operator token's cookie (it may sign out).
    return bool(getattr(request.state, "signed_in", False))
