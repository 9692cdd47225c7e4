"""A fake Zendesk: the Ticketing API the bridge calls and the signed ticket-event webhooks it sends.

Built from Zendesk's public docs (Webhooks: verifying, ticket event types; Ticketing API: tickets,
ticket comments, users/me, rate limits). What the docs do not settle, and what this fake chose:
- Whether creating a ticket also sends `ticket.comment_added` for its first comment: this fake
  sends both `ticket.created` and `comment_added`, in that order, with the same
  `event.meta.sequence.id` and `detail.updated_at == detail.created_at` (the adapter must
  answer once either way).
- Comment and author ids inside `event.comment`: the docs' examples disagree (string or number);
  this fake sends numbers there and strings in `detail`, the worse case for a parser.
- Status values in `detail.status` and `event.current`: upper case in the docs' examples, lower
  case in the REST API; this fake sends upper case in events.
- A comment added through the API comes back as a `comment_added` event authored by the
  `author_id` given (the bot user), `is_staff: true`, like any agent comment.
- 429 body: plain text with `Retry-After` (seconds), as the rate-limit docs show.
- Cursor pagination on `GET /api/v2/tickets/{id}/comments.json` (`page[size]`, `page[after]`,
  `meta.has_more`, `links.next`, `sort_order`), as documented; offset pagination is not served.
  The cursor is an opaque string (here an offset).
- `apply_then_fail_next`: an update applied but answered 500, which the docs do not describe
  but any HTTP API behind a proxy can do (the bridge must not comment twice then).
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web

from adapters.zendesk.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.fakes.loopback import SideEffects

ACCOUNT_ID = 9242270


@dataclass
class Ticket:
    id: int
    requester_id: int
    subject: str
    description: str
    status: str = "new"
    assignee_id: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeZendesk:
    """`webhook_url` is where events go (the bridge); `fail_next` answers that many ticket
    updates (and users/me) with `fail_status` (429 carries Retry-After) before serving them."""

    webhook_secret: str
    email: str = "bot@example.com"
    api_token: str = "zd-api-token"
    bot_user_id: int = 900
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, Ticket] = field(default_factory=dict)
    webhook_url: str = ""
    fail_next: int = 0
    fail_status: int = 429
    # Updates applied, then answered 500 anyway (a timeout behind Zendesk's edge looks like this).
    apply_then_fail_next: int = 0
    retry_after: str = "1"
    api_calls: list[tuple[str, str, int]] = field(default_factory=list)
    deliveries: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    _effects: SideEffects = field(default_factory=SideEffects)

    def __post_init__(self) -> None:
        self.users.setdefault(self.bot_user_id, {"name": "Engage Bot", "is_staff": True})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v2/users/me.json", self._me)
        app.router.add_put("/api/v2/tickets/{id}.json", self._update)
        app.router.add_get("/api/v2/tickets/{id}/comments.json", self._comments)
        self.url = await self._effects.start(app)
        return self.url

    async def close(self) -> None:
        await self._effects.close()

    async def idle(self) -> None:
        """Until every event the API's side effects caused has been delivered."""
        await self._effects.idle()

    # People and desk actions (what agents and customers do in Zendesk's own UI).
    def add_user(self, user_id: int, name: str, *, staff: bool) -> int:
        self.users[user_id] = {"name": name, "is_staff": staff}
        return user_id

    async def create_ticket(self, requester_id: int, subject: str, body: str) -> int:
        ticket = Ticket(next(self._ids), requester_id, subject, body)
        ticket.updated_at = ticket.created_at
        self.tickets[ticket.id] = ticket
        comment = self._store_comment(ticket, requester_id, body, public=True, touch=False)
        sequence = uuid.uuid4().hex
        await self.deliver(self.event(ticket, "created", {"meta": _meta(sequence, 1)}))
        await self.deliver(self.comment_event(ticket, comment, sequence))
        return ticket.id

    async def comment(self, ticket_id: int, author_id: int, body: str, public: bool = True) -> None:
        ticket = self.tickets[ticket_id]
        comment = self._store_comment(ticket, author_id, body, public=public)
        was = ticket.status
        if not self.users[author_id]["is_staff"] and was in ("solved", "pending"):
            ticket.status = "open"  # an end user's reply reopens the ticket
        await self.deliver(self.comment_event(ticket, comment, uuid.uuid4().hex))
        if ticket.status != was:
            await self.deliver(self._status_event(ticket, was))

    async def set_status(self, ticket_id: int, status: str, actor_id: int) -> None:
        ticket = self.tickets[ticket_id]
        was, ticket.status = ticket.status, status
        ticket.updated_at = _later(ticket.updated_at)
        await self.deliver(self._status_event(ticket, was, actor_id))

    async def assign(self, ticket_id: int, agent_id: int) -> None:
        ticket = self.tickets[ticket_id]
        was, ticket.assignee_id = ticket.assignee_id, agent_id
        ticket.updated_at = _later(ticket.updated_at)
        change = {"current": str(agent_id), "previous": str(was) if was else None}
        await self.deliver(self.event(ticket, "agent_assignment_changed", change))

    # Webhook payloads and delivery.
    def event(self, ticket: Ticket, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "account_id": ACCOUNT_ID,
            "detail": {
                "id": str(ticket.id),
                "requester_id": str(ticket.requester_id),
                "assignee_id": str(ticket.assignee_id) if ticket.assignee_id else None,
                "status": ticket.status.upper(),
                "subject": ticket.subject,
                "description": ticket.description,
                "created_at": _iso(ticket.created_at),
                "updated_at": _iso(ticket.updated_at),
                "via": {"channel": "web"},
            },
            "event": body,
            "id": str(uuid.uuid4()),
            "subject": f"zen:ticket:{ticket.id}",
            "time": _iso(datetime.now(UTC)),
            "type": f"zen:event-type:ticket.{kind}",
            "zendesk_event_version": "2022-11-06",
        }

    def comment_event(
        self, ticket: Ticket, comment: dict[str, Any], sequence: str
    ) -> dict[str, Any]:
        author = self.users[comment["author_id"]]
        body = {
            "comment": {
                "id": comment["id"],
                "body": comment["body"],
                "is_public": comment["public"],
                "author": {
                    "id": comment["author_id"],
                    "is_staff": author["is_staff"],
                    "name": author["name"],
                },
            },
            "meta": _meta(sequence, 2),
        }
        return self.event(ticket, "comment_added", body)

    def signed(
        self, payload: dict[str, Any], *, secret: str | None = None, timestamp: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(payload).encode()
        stamp = timestamp or _iso(datetime.now(UTC))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(secret or self.webhook_secret, stamp, raw),
            "X-Zendesk-Webhook-Id": "01HWEBHOOK",
        }
        return raw, headers

    async def deliver(self, payload: dict[str, Any], **sign_options: Any) -> httpx.Response:
        """POST one event to the bridge, signed afresh; the answer is kept in `deliveries`."""
        assert self.webhook_url
        raw, headers = self.signed(payload, **sign_options)
        response = await self._effects.http.post(self.webhook_url, content=raw, headers=headers)
        self.deliveries.append((payload, response.status_code))
        return response

    # The Ticketing API.
    def _authorised(self, request: web.Request) -> bool:
        expected = f"{self.email}/token:{self.api_token}".encode()
        header = request.headers.get("Authorization", "")
        return header == "Basic " + base64.b64encode(expected).decode()

    def _gate(self, request: web.Request, *, faults: bool = True) -> web.Response | None:
        if not self._authorised(request):
            return web.json_response({"error": "Couldn't authenticate you"}, status=401)
        if faults and self.fail_next > 0:
            self.fail_next -= 1
            if self.fail_status == 429:
                return web.Response(
                    status=429,
                    text="Rate limit for ticket updates exceeded, please wait before updating "
                    "this ticket again",
                    headers={"Retry-After": self.retry_after},
                )
            return web.json_response({"error": "ServiceUnavailable"}, status=self.fail_status)
        return None

    async def _me(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return web.json_response({"user": {"id": None, "name": "Anonymous user"}})
        user = self.users[self.bot_user_id]
        return web.json_response(
            {
                "user": {
                    "id": self.bot_user_id,
                    "name": user["name"],
                    "email": self.email,
                    "role": "agent",
                }
            }
        )

    async def _update(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        self.api_calls.append(("PUT", request.path, refused.status if refused else 200))
        if refused is not None:
            return refused
        ticket = self.tickets.get(int(request.match_info["id"]))
        if ticket is None:
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        if ticket.status == "closed":
            return web.json_response(
                {"error": "RecordInvalid", "description": "Record validation errors"}, status=422
            )
        change = (await request.json())["ticket"]
        events: list[dict[str, Any]] = []
        if "status" in change:
            ticket.status = change["status"]
        if "comment" in change:
            raw = change["comment"]
            author = int(raw.get("author_id") or self.bot_user_id)
            comment = self._store_comment(
                ticket, author, raw["body"], public=raw.get("public", True)
            )
            events.append(
                {
                    "id": comment["id"],
                    "type": "Comment",
                    "body": raw["body"],
                    "public": comment["public"],
                    "author_id": author,
                }
            )
            # The side effect Zendesk has too: the new comment is an event to every webhook.
            self._spawn(self.deliver(self.comment_event(ticket, comment, uuid.uuid4().hex)))
        if self.apply_then_fail_next > 0:
            self.apply_then_fail_next -= 1
            self.api_calls[-1] = ("PUT", request.path, 500)
            return web.json_response({"error": "InternalServerError"}, status=500)
        return web.json_response(
            {
                "ticket": self._ticket_json(ticket),
                "audit": {"id": next(self._ids), "events": events},
            }
        )

    async def _comments(self, request: web.Request) -> web.Response:
        refused = self._gate(request, faults=False)
        if refused is not None:
            return refused
        self.api_calls.append(("GET", request.path, 200))
        ticket = self.tickets[int(request.match_info["id"])]
        size = min(int(request.query.get("page[size]", "100")), 100)
        after = int(request.query.get("page[after]", "0") or 0)
        order = request.query.get("sort_order", "asc")
        ordered = ticket.comments[::-1] if order == "desc" else ticket.comments
        page = ordered[after : after + size]
        more = after + size < len(ticket.comments)
        cursor = str(after + size) if more else None
        base = f"{self.url}{request.path}?sort_order={order}&page[size]={size}"
        return web.json_response(
            {
                "comments": page,
                "meta": {"has_more": more, "after_cursor": cursor, "before_cursor": None},
                "links": {"next": f"{base}&page[after]={cursor}" if more else None, "prev": None},
            }
        )

    def _store_comment(
        self, ticket: Ticket, author_id: int, body: str, *, public: bool, touch: bool = True
    ) -> dict[str, Any]:
        if touch:
            ticket.updated_at = _later(ticket.updated_at)
        comment = {
            "id": next(self._ids),
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "public": public,
            "created_at": _iso(ticket.updated_at),
        }
        ticket.comments.append(comment)
        return comment

    def _status_event(self, ticket: Ticket, was: str, actor: int | None = None) -> dict[str, Any]:
        payload = self.event(
            ticket, "status_changed", {"current": ticket.status.upper(), "previous": was.upper()}
        )
        payload["detail"]["actor_id"] = str(actor) if actor else None
        return payload

    def _ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        return {
            "id": ticket.id,
            "status": ticket.status,
            "requester_id": ticket.requester_id,
            "assignee_id": ticket.assignee_id,
            "subject": ticket.subject,
        }

    def _spawn(self, coro: Any) -> None:
        self._effects.spawn(coro)

    def public_comments_by(self, ticket_id: int, author_id: int) -> list[str]:
        return [
            c["body"]
            for c in self.tickets[ticket_id].comments
            if c["author_id"] == author_id and c["public"]
        ]

    def notes_by(self, ticket_id: int, author_id: int) -> list[str]:
        return [
            c["body"]
            for c in self.tickets[ticket_id].comments
            if c["author_id"] == author_id and not c["public"]
        ]


def _meta(sequence: str, position: int) -> dict[str, Any]:
    return {"sequence": {"id": sequence, "position": position, "total": 2}}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(moment: datetime) -> datetime:
    """Zendesk's times have whole seconds: every change moves `updated_at` on by at least one."""
    return max(datetime.now(UTC), moment + timedelta(seconds=1))
