"""The playground's JSON API: start threads, post messages and staff actions, poll for news."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.web.store import Entry, TranscriptStore
from bridge.adapter import Inbox
from bridge.errors import StorageUnavailable
from bridge.inbox import storage
from bridge.models import InboundMessage, Origin, SubmitResult, ThreadKey

log = logging.getLogger(__name__)

SOURCE = "web"
WORKSPACE = "playground"
CHANNEL = "local"
COMMANDS = frozenset({"handoff", "resume", "resolve"})
MAX_TEXT_CHARS = 8000
_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")


class ThreadState(Protocol):
    """What the playground shows of the core's thread record (bridge.threadmap.ThreadRecord)."""

    @property
    def conversation_id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def status(self) -> str: ...


class ThreadRecords(Protocol):
    async def get(self, thread: ThreadKey | str) -> ThreadState | None: ...


class BadRequest(ValueError):
    status = 400


class NotJson(BadRequest):
    status = 415


def thread_key(thread_id: str) -> ThreadKey:
    return ThreadKey(SOURCE, WORKSPACE, CHANNEL, thread_id)


def new_thread_id() -> str:
    return secrets.token_hex(6)


def checked_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise BadRequest(f"{what} must be 4-64 letters, digits, '-' or '_'")
    return value


def to_event(
    thread_id: str, *, text: str, as_staff: bool, client_id: str, now: datetime
) -> InboundMessage:
    """A typed playground message; staff messages hand the thread over to a human."""
    return InboundMessage(
        thread=thread_key(thread_id),
        message_id=f"web-{client_id}",
        user_id="web-staff" if as_staff else "web-customer",
        user_name="Staff" if as_staff else "Customer",
        text=text,
        sent_at=now,
        # The playground is a private chat with the agent, like a direct message.
        is_dm=True,
        origin=Origin.STAFF if as_staff else Origin.USER,
        ticket_id=thread_id,
    )


def command_event(thread_id: str, command: str, *, client_id: str, now: datetime) -> InboundMessage:
    if command not in COMMANDS:
        raise BadRequest(f"command must be one of {', '.join(sorted(COMMANDS))}")
    return InboundMessage(
        thread=thread_key(thread_id),
        message_id=f"web-{client_id}",
        user_id="web-staff",
        user_name="Staff",
        text="",
        sent_at=now,
        is_dm=True,
        origin=Origin.STAFF,
        ticket_id=thread_id,
        command=command,
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def require_json(request: Request) -> None:
    # Browsers send cross-site text/plain or form POSTs without asking first (no CORS
    # preflight); demanding application/json keeps other pages from acting as "staff" here.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise NotJson("Content-Type must be application/json")


async def _json_object(request: Request) -> dict[str, Any]:
    require_json(request)
    try:
        payload = await request.json()
    except ValueError:
        raise BadRequest("body must be JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    return payload


class PlaygroundApi:
    def __init__(self, inbox: Inbox, store: TranscriptStore, records: ThreadRecords) -> None:
        self._inbox = inbox
        self._store = store
        self._records = records

    async def create(self, request: Request) -> JSONResponse:
        try:
            require_json(request)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        thread_id = new_thread_id()
        return JSONResponse({"id": thread_id, "thread": str(thread_key(thread_id))}, 201)

    async def poll(self, request: Request) -> JSONResponse:
        try:
            thread_id = checked_id(request.path_params["thread_id"], "thread id")
            after = int(request.query_params.get("after", "0"))
        except (BadRequest, ValueError) as exc:
            return _error(400, str(exc))
        thread = thread_key(thread_id)
        try:
            entries = await self._store.read(thread, max(after, 0))
            status_line = await self._store.status(thread)
            async with storage("thread record"):
                record = await self._records.get(thread)
        except StorageUnavailable as exc:
            return _error(503, f"storage unavailable: {exc}")
        return JSONResponse(
            {
                "id": thread_id,
                "thread": str(thread),
                "entries": entries,
                "status_line": status_line,
                "state": record.status if record else "new",
                "conversation_id": record.conversation_id if record else None,
                "agent": record.agent if record else None,
            }
        )

    async def post_message(self, request: Request) -> JSONResponse:
        try:
            thread_id = checked_id(request.path_params["thread_id"], "thread id")
            payload = await _json_object(request)
            client_id = checked_id(payload.get("client_id"), "client_id")
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
                raise BadRequest(f"text must be 1-{MAX_TEXT_CHARS} characters")
            as_staff = payload.get("as", "user") == "staff"
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        message = to_event(
            thread_id, text=text.strip(), as_staff=as_staff, client_id=client_id, now=_now()
        )
        role = "staff" if as_staff else "user"
        entry = Entry(role=role, text=message.text, name=message.user_name)
        return await self._submit(message, entry)

    async def post_command(self, request: Request) -> JSONResponse:
        try:
            thread_id = checked_id(request.path_params["thread_id"], "thread id")
            payload = await _json_object(request)
            client_id = checked_id(payload.get("client_id"), "client_id")
            message = command_event(
                thread_id, str(payload.get("command")), client_id=client_id, now=_now()
            )
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        return await self._submit(message, None)

    async def _submit(self, message: InboundMessage, entry: Entry | None) -> JSONResponse:
        try:
            # Shown before it is submitted: the agent's answer must never appear above it.
            if entry is not None:
                await self._store.append(message.thread, message.message_id, entry)
            result = await self._inbox.submit(message)
            if result.extra.get("outcome") == "ignored":
                note = Entry(role="local", text=f"Not passed to the bridge: {result.reason}.")
                await self._store.append(message.thread, f"ignored:{message.message_id}", note)
        except StorageUnavailable as exc:
            log.warning("playground message not stored: %s", exc)
            return _error(503, "storage unavailable, try again")
        return JSONResponse(_outcome(result))


def _outcome(result: SubmitResult) -> dict[str, Any]:
    outcome = result.extra.get("outcome") or ("accepted" if result.accepted else "ignored")
    return {"status": outcome, "reason": result.reason}


def _now() -> datetime:
    return datetime.now(UTC)
