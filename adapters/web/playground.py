"""The playground's JSON API: start threads, post messages and staff actions, poll for news."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.web.access import Access
from adapters.web.ratelimit import RateLimiter
from adapters.web.session import Sessions
from adapters.web.store import Entry, TranscriptStore
from bridge.adapter import Inbox
from bridge.guard import BadRequest, GuardRejected, json_object
from bridge.inbox import storage
from bridge.models import InboundMessage, Origin, SubmitResult, ThreadKey

log = logging.getLogger(__name__)

SOURCE = "web"
WORKSPACE = "playground"
CHANNEL = "local"
COMMANDS = frozenset({"handoff", "resume", "resolve", "agent"})
MAX_TEXT_CHARS = 8000
MAX_AFTER = 10_000_000
_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
_AGENT = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


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


class NotYours(GuardRejected):
    """Another visitor's thread, or none: the same answer, so ids cannot be probed."""

    status = 404


class StaffOnly(GuardRejected):
    status = 403


class TooMany(GuardRejected):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests, try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Limits:
    messages_per_minute: int = 20
    threads_per_hour: int = 30


def thread_key(thread_id: str) -> ThreadKey:
    return ThreadKey(SOURCE, WORKSPACE, CHANNEL, thread_id)


def new_thread_id() -> str:
    return secrets.token_hex(6)


def checked_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise BadRequest(f"{what} must be 4-64 letters, digits, '-' or '_'")
    return value


def chosen_agent(value: object) -> str | None:
    """The picker's agent sent with a message (None: the routed one)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _AGENT.match(value):
        raise BadRequest("agent must be an agent's name")
    return value


def to_event(
    thread_id: str,
    *,
    text: str,
    as_staff: bool,
    client_id: str,
    now: datetime,
    agent: str | None = None,
) -> InboundMessage:
    """A typed playground message; staff messages hand the thread over to a human. `agent`
    (the picker, staff only) is the agent a thread without a conversation starts with."""
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
        agent=agent,
    )


def command_event(
    thread_id: str, command: str, *, client_id: str, now: datetime, agent: object = None
) -> InboundMessage:
    """A staff action; `agent` names the agent for the `agent` command (the picker)."""
    if command not in COMMANDS:
        raise BadRequest(f"command must be one of {', '.join(sorted(COMMANDS))}")
    if command == "agent":
        name = chosen_agent(agent)
        if name is None:
            raise BadRequest("agent must be an agent's name")
        command = f"agent {name}"
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


def _refused(exc: GuardRejected) -> JSONResponse:
    response = _error(exc.status, str(exc))
    if isinstance(exc, TooMany):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _json_object(request: Request) -> dict[str, Any]:
    # The ingress guard has checked the media type and read the capped body; a GuardRejected
    # from json_object is its 400.
    return json_object(await request.body())


class PlaygroundApi:
    """Each visitor (signed cookie) sees only the threads it started; staff acts only as staff."""

    def __init__(
        self,
        inbox: Inbox,
        store: TranscriptStore,
        records: ThreadRecords,
        sessions: Sessions,
        limiter: RateLimiter,
        limits: Limits | None = None,
    ) -> None:
        self._inbox = inbox
        self._store = store
        self._records = records
        self._sessions = sessions
        self._limiter = limiter
        self._limits = limits or Limits()

    async def create(self, request: Request) -> JSONResponse:
        try:
            if request.state.access is not Access.STAFF:
                client = request.client.host if request.client else "unknown"
                await self._limit(f"threads:{client}", self._limits.threads_per_hour, 3600)
        except GuardRejected as exc:
            return _refused(exc)
        visitor = await self._sessions.visitor(request)
        cookie = None
        if visitor is None:
            visitor, cookie = await self._sessions.new_visitor()
        thread_id = new_thread_id()
        await self._store.claim(thread_key(thread_id), visitor)
        response = JSONResponse({"id": thread_id, "thread": str(thread_key(thread_id))}, 201)
        if cookie is not None:
            self._sessions.remember_visitor(response, request, cookie)
        return response

    async def poll(self, request: Request) -> JSONResponse:
        try:
            thread_id = await self._own_thread(request)
            after = int(request.query_params.get("after", "0"))
            if not 0 <= after <= MAX_AFTER:
                raise ValueError(f"after must be 0-{MAX_AFTER}")
        except GuardRejected as exc:
            return _refused(exc)
        except ValueError as exc:
            return _error(400, str(exc))
        thread = thread_key(thread_id)
        entries = await self._store.read(thread, after)
        status_line = await self._store.status(thread)
        async with storage("thread record"):
            record = await self._records.get(thread)
        return JSONResponse(
            {
                "id": thread_id,
                "thread": str(thread),
                "entries": entries,
                "status_line": status_line,
                "state": record.status if record else "new",
                "conversation_id": record.conversation_id if record else None,
                "agent": record.agent if record else None,
                "staff": request.state.access is Access.STAFF,
                "signed_in": bool(getattr(request.state, "signed_in", False)),
            }
        )

    async def post_message(self, request: Request) -> JSONResponse:
        try:
            thread_id = await self._own_thread(request)
            payload = await _json_object(request)
            client_id = checked_id(payload.get("client_id"), "client_id")
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
                raise BadRequest(f"text must be 1-{MAX_TEXT_CHARS} characters")
            as_staff = payload.get("as", "user") == "staff"
            agent = chosen_agent(payload.get("agent"))
            await self._may_act(request, staff=as_staff or agent is not None)
        except GuardRejected as exc:
            return _refused(exc)
        message = to_event(
            thread_id,
            text=text.strip(),
            as_staff=as_staff,
            client_id=client_id,
            now=_now(),
            agent=agent,
        )
        role = "staff" if as_staff else "user"
        entry = Entry(role=role, text=message.text, name=message.user_name)
        return await self._submit(message, entry)

    async def post_command(self, request: Request) -> JSONResponse:
        try:
            thread_id = await self._own_thread(request)
            payload = await _json_object(request)
            client_id = checked_id(payload.get("client_id"), "client_id")
            message = command_event(
                thread_id,
                str(payload.get("command")),
                client_id=client_id,
                now=_now(),
                agent=payload.get("agent"),
            )
            await self._may_act(request, staff=True)
        except GuardRejected as exc:
            return _refused(exc)
        return await self._submit(message, None)

    async def _own_thread(self, request: Request) -> str:
        thread_id = checked_id(request.path_params["thread_id"], "thread id")
        visitor = await self._sessions.visitor(request)
        if visitor is None or await self._store.owner(thread_key(thread_id)) != visitor:
            raise NotYours("no such thread in this browser")
        return thread_id

    async def _may_act(self, request: Request, *, staff: bool) -> None:
        if staff and request.state.access is not Access.STAFF:
            raise StaffOnly("staff only: sign in with the operator token")
        visitor = await self._sessions.visitor(request)
        await self._limit(f"messages:{visitor}", self._limits.messages_per_minute, 60)

    async def _limit(self, bucket: str, limit: int, window_seconds: int) -> None:
        if wait := await self._limiter.retry_after(bucket, limit, window_seconds):
            log.info("playground request over its rate limit (%s)", bucket.partition(":")[0])
            raise TooMany(wait)

    async def _submit(self, message: InboundMessage, entry: Entry | None) -> JSONResponse:
        # Shown before it is submitted: the agent's answer must never appear above it.
        if entry is not None:
            await self._store.append(message.thread, message.message_id, entry)
        result = await self._inbox.submit(message)
        if result.extra.get("outcome") == "ignored":
            note = Entry(role="local", text=f"Not passed to the bridge: {result.reason}.")
            await self._store.append(message.thread, f"ignored:{message.message_id}", note)
        return JSONResponse(_outcome(result))


def _outcome(result: SubmitResult) -> dict[str, Any]:
    outcome = result.extra.get("outcome") or ("accepted" if result.accepted else "ignored")
    return {"status": outcome, "reason": result.reason}


def _now() -> datetime:
    return datetime.now(UTC)
