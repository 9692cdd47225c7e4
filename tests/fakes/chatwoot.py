"""A fake Chatwoot: an inbox with a connected Agent Bot, its webhook deliveries and account API.

Built from Chatwoot's source (AgentBotListener, Webhooks::Trigger and AgentBots::WebhookJob,
Message/Conversation#webhook_data and the conversation EventDataPresenter, AccessTokenAuthHelper's
BOT_ACCESSIBLE_ENDPOINTS, the Rack::Attack initializer) and its API docs. Behaviour copied:
- A bot connected to an inbox gets message_created (every message, its own and private notes
  included), conversation_opened and conversation_resolved; status changes to pending are not
  sent to bots. New conversations start `pending`; a contact writing to a resolved conversation
  puts it back to `pending`; a human agent's reply does not change the status.
- Deliveries carry `X-Chatwoot-Delivery` (one uuid per event, kept across retries) and, when the
  bot has a secret, `X-Chatwoot-Timestamp` + `X-Chatwoot-Signature: sha256=<hex>` over
  "<timestamp>.<body>", signed anew per attempt. 429 and 500 are retried (3 attempts in all);
  any other failure of a message event on a pending conversation opens it (the hand-off
  Chatwoot does when its bot fails).
- The bot token may create messages and toggle status; listing messages answers 401
  "Access to this endpoint is not authorized for bots"; a wrong token 401 "Invalid Access Token".
- Rate limit: Rack::Attack's default answer, 429 text/plain "Retry later\n".
What the sources do not settle, and what this fake chose:
- Rack::Attack sends no Retry-After unless configured: none here, so clients need their own
  backoff. The wait between job retries (3 s upstream) is `retry_wait` (short in tests).
- Whether toggling to the status a conversation already has emits an event: it does not here.
- `GET .../conversations/{id}` (bots may read it in current versions) returns the newest message
  in `messages`; Chatwoot returns up to 10 unread ones instead when there are unread incoming
  messages, which this fake does not model.
- `apply_then_fail_next`: a message created but answered 500 (the bridge must not post twice).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.chatwoot.auth import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.fakes.loopback import SideEffects

ACCOUNT = {"id": 1, "name": "Acme Support"}
INBOX = {"id": 3, "name": "Website"}
BOT = {"id": 7, "name": "Engage Bot", "type": "agent_bot"}


@dataclass
class Conversation:
    id: int
    contact_id: int
    status: str = "pending"
    assignee_id: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)


@dataclass
class FakeChatwoot:
    """`outgoing_url` is the bot's webhook URL (the bridge); `fail_next` answers that many API
    calls with `fail_status` before serving them."""

    bot_token: str = "cw-bot-token"
    bot_secret: str | None = None
    outgoing_url: str = ""
    retry_wait: float = 0.05
    clock_offset: int = 0
    contacts: dict[int, str] = field(default_factory=dict)
    agents: dict[int, str] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    fail_next: int = 0
    fail_status: int = 429
    # Messages created, then answered 500 anyway (a proxy timing out looks like this).
    apply_then_fail_next: int = 0
    api_calls: list[tuple[str, str, int]] = field(default_factory=list)
    deliveries: list[tuple[str, str, int]] = field(default_factory=list)
    url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(101))
    _effects: SideEffects = field(default_factory=SideEffects)

    async def start(self) -> str:
        app = web.Application()
        base = "/api/v1/accounts/{account}/conversations/{id}"
        app.router.add_post(f"{base}/messages", self._create_message)
        app.router.add_get(f"{base}/messages", self._list_messages)
        app.router.add_post(f"{base}/toggle_status", self._toggle_status)
        app.router.add_get(base, self._show)
        self.url = await self._effects.start(app)
        return self.url

    async def close(self) -> None:
        await self._effects.close()

    async def idle(self) -> None:
        await self._effects.idle()

    # What contacts and agents do in Chatwoot.
    async def contact_writes(
        self, contact_id: int, text: str, conversation: int | None = None
    ) -> int:
        self.contacts.setdefault(contact_id, f"Contact {contact_id}")
        if conversation is None:
            conv = Conversation(next(self._ids), contact_id)
            self.conversations[conv.id] = conv
        else:
            conv = self.conversations[conversation]
            if conv.status == "resolved":
                conv.status = "pending"  # the inbox has an active bot
        message = self._store(conv, text, "incoming", self._contact(contact_id), private=False)
        await self.dispatch("message_created", self.message_data(conv, message))
        return conv.id

    async def agent_writes(
        self, conversation: int, agent_id: int, text: str, *, private: bool = False
    ) -> None:
        conv = self.conversations[conversation]
        sender = {
            "id": agent_id,
            "name": self.agents[agent_id],
            "type": "user",
            "avatar_url": "",
            "availability_status": "online",
            "thumbnail": "",
        }
        message = self._store(conv, text, "outgoing", sender, private=private)
        await self.dispatch("message_created", self.message_data(conv, message))

    async def set_status(self, conversation: int, status: str, agent_id: int | None = None) -> None:
        """An agent changes the status in the dashboard."""
        conv = self.conversations[conversation]
        if agent_id is not None:
            conv.assignee_id = agent_id
        await self._change_status(conv, status)

    # Payloads (Message#webhook_data, Conversation#webhook_data) and delivery.
    def conversation_data(self, conv: Conversation) -> dict[str, Any]:
        last = [m for m in conv.messages if not m["private"]][-1:]
        assignee = (
            {"id": conv.assignee_id, "name": self.agents[conv.assignee_id], "type": "user"}
            if conv.assignee_id
            else None
        )
        return {
            "additional_attributes": {},
            "can_reply": True,
            "channel": "Channel::Api",
            "contact_inbox": {"source_id": f"src-{conv.contact_id}"},
            "id": conv.id,
            "inbox_id": INBOX["id"],
            "messages": [m["push"] for m in last],
            "labels": [],
            "meta": {
                "sender": self._contact(conv.contact_id),
                "assignee": assignee,
                "assignee_type": "User" if assignee else None,
                "team": None,
                "hmac_verified": False,
            },
            "status": conv.status,
            "custom_attributes": {},
            "snoozed_until": None,
            "unread_count": 0,
            "first_reply_created_at": None,
            "priority": None,
            "waiting_since": 0,
            "agent_last_seen_at": 0,
            "contact_last_seen_at": 0,
            "last_activity_at": int(time.time()),
            "timestamp": int(time.time()),
            "created_at": int(conv.created_at),
            "updated_at": time.time(),
            "account": ACCOUNT,
        }

    def message_data(self, conv: Conversation, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "account": ACCOUNT,
            "additional_attributes": {},
            "content_attributes": {},
            "content_type": "text",
            "content": message["content"],
            "conversation": self.conversation_data(conv),
            "created_at": message["created_at"],
            "id": message["id"],
            "inbox": INBOX,
            "message_type": message["message_type"],
            "private": message["private"],
            "sender": message["sender"],
            "source_id": None,
        }

    def signed_headers(
        self, body: bytes, delivery: str, *, secret: str | None = None, timestamp: str | None = None
    ) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            DELIVERY_HEADER: delivery,
        }
        key = secret or self.bot_secret
        if key:
            stamp = timestamp or str(int(time.time()) + self.clock_offset)
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(key, stamp, body)
        return headers

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """AgentBots::WebhookJob: one delivery id, up to 3 attempts on 429/500, then give up."""
        body = json.dumps({**data, "event": event}).encode()
        delivery = str(uuid.uuid4())
        for attempt in range(1, 4):
            status = await self.post(body, delivery)
            if status < 300:
                return
            if status not in (429, 500) or attempt == 3:
                break
            await asyncio.sleep(self.retry_wait)
        if event.startswith("message_"):
            conv = self.conversations[data["conversation"]["id"]]
            if conv.status == "pending":
                conv.status = "open"  # Chatwoot hands the conversation to humans

    async def post(self, body: bytes, delivery: str, **sign_options: Any) -> int:
        headers = self.signed_headers(body, delivery, **sign_options)
        response = await self._effects.http.post(self.outgoing_url, content=body, headers=headers)
        self.deliveries.append((json.loads(body)["event"], delivery, response.status_code))
        return response.status_code

    # The account API (as the bot's token sees it).
    def _gate(self, request: web.Request) -> web.Response | None:
        if request.headers.get("api_access_token") != self.bot_token:
            return web.json_response({"error": "Invalid Access Token"}, status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            if self.fail_status == 429:
                return web.Response(status=429, text="Retry later\n", content_type="text/plain")
            return web.json_response({"error": "Internal Server Error"}, status=self.fail_status)
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        self.api_calls.append(("POST", request.path, refused.status if refused else 200))
        if refused is not None:
            return refused
        conv = self.conversations.get(int(request.match_info["id"]))
        if conv is None:
            return web.json_response({"error": "Resource could not be found"}, status=404)
        params = await request.json()
        message = self._store(
            conv,
            params["content"],
            params.get("message_type", "outgoing"),
            BOT,
            private=bool(params.get("private", False)),
        )
        # Like Chatwoot: the bot's own message is an event to the bot as well.
        self._spawn(self.dispatch("message_created", self.message_data(conv, message)))
        if self.apply_then_fail_next > 0:
            self.apply_then_fail_next -= 1
            self.api_calls[-1] = ("POST", request.path, 500)
            return web.json_response({"error": "Internal Server Error"}, status=500)
        return web.json_response(message["push"])

    async def _list_messages(self, request: web.Request) -> web.Response:
        if request.headers.get("api_access_token") == self.bot_token:
            return web.json_response(
                {"error": "Access to this endpoint is not authorized for bots"}, status=401
            )
        return web.json_response({"error": "Invalid Access Token"}, status=401)

    async def _show(self, request: web.Request) -> web.Response:
        if request.headers.get("api_access_token") != self.bot_token:
            return web.json_response({"error": "Invalid Access Token"}, status=401)
        conv = self.conversations.get(int(request.match_info["id"]))
        if conv is None:
            return web.json_response({"error": "Resource could not be found"}, status=404)
        self.api_calls.append(("GET", request.path, 200))
        # The conversation partial: `messages` holds the newest message (of any kind).
        return web.json_response(
            {**self.conversation_data(conv), "messages": [conv.messages[-1]["push"]]}
        )

    async def _toggle_status(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        self.api_calls.append(("POST", request.path, refused.status if refused else 200))
        if refused is not None:
            return refused
        conv = self.conversations[int(request.match_info["id"])]
        status = (await request.json()).get("status") or (
            "resolved" if conv.status == "open" else "open"
        )
        self._spawn(self._change_status(conv, status))
        return web.json_response(
            {
                "meta": {},
                "payload": {"success": True, "current_status": status, "conversation_id": conv.id},
            }
        )

    async def _change_status(self, conv: Conversation, status: str) -> None:
        was, conv.status = conv.status, status
        if status != was and status in ("open", "resolved"):
            event = "conversation_opened" if status == "open" else "conversation_resolved"
            await self.dispatch(event, self.conversation_data(conv))

    def _store(
        self,
        conv: Conversation,
        content: str,
        message_type: str,
        sender: dict[str, Any],
        *,
        private: bool,
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        created = datetime.now(UTC).isoformat()
        types = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
        push = {
            "id": message_id,
            "content": content,
            "message_type": types[message_type],
            "private": private,
            "conversation_id": conv.id,
            "created_at": int(time.time()),
            "sender": sender,
            "content_type": "text",
            "status": "sent",
        }
        message = {
            "id": message_id,
            "content": content,
            "message_type": message_type,
            "private": private,
            "sender": sender,
            "created_at": created,
            "push": push,
        }
        conv.messages.append(message)
        return message

    def _contact(self, contact_id: int) -> dict[str, Any]:
        return {
            "id": contact_id,
            "name": self.contacts[contact_id],
            "avatar": "",
            "type": "contact",
            "account": ACCOUNT,
            "additional_attributes": {},
            "custom_attributes": {},
            "email": None,
            "identifier": None,
            "phone_number": None,
            "thumbnail": "",
        }

    def _spawn(self, coro: Any) -> None:
        self._effects.spawn(coro)

    def bot_messages(self, conversation: int, *, private: bool = False) -> list[str]:
        return [
            m["content"]
            for m in self.conversations[conversation].messages
            if m["sender"].get("type") == "agent_bot" and m["private"] is private
        ]
