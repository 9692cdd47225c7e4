"""The Zendesk and Chatwoot endpoints with an inbox whose storage is down: the desk retries."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.applications import Starlette

from adapters.chatwoot.webhook import ChatwootWebhook
from adapters.zendesk.webhook import ZendeskWebhook
from bridge.errors import StorageUnavailable
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from tests.fakes.chatwoot import Conversation, FakeChatwoot
from tests.fakes.zendesk import FakeZendesk, Ticket

TOKEN = "chatwoot-url-token-0123"


class DownInbox:
    """Storage is unavailable for every call (the thread status lookup included)."""

    def __init__(self) -> None:
        self.calls = 0

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.calls += 1
        raise StorageUnavailable("redis down")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        raise StorageUnavailable("redis down")

    async def thread_status(self, thread: ThreadKey) -> str | None:
        raise StorageUnavailable("redis down")


async def post(app: Starlette, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as http:
        return await http.post(path, content=body, headers=headers)


async def test_zendesk_gets_503_with_retry_after_when_storage_is_down() -> None:
    desk, inbox = FakeZendesk(webhook_secret="zendesk-webhook-secret"), DownInbox()
    desk.add_user(501, "Ann", staff=False)
    ticket = Ticket(1, 501, "Subject", "Help")
    comment = {"id": 5, "author_id": 501, "body": "Help", "public": True}
    body, headers = desk.signed(desk.comment_event(ticket, comment, "seq"))
    webhook = ZendeskWebhook(inbox, desk.webhook_secret, "900", False)
    response = await post(Starlette(routes=[webhook.route("/zd")]), "/zd", body, headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert inbox.calls == 1


async def test_chatwoot_gets_500_the_status_it_retries_when_storage_is_down() -> None:
    desk = FakeChatwoot(bot_secret="chatwoot-bot-secret-0123")
    conv_id = _conversation(desk)
    conv = desk.conversations[conv_id]
    payload: dict[str, Any] = {
        **desk.message_data(conv, conv.messages[0]),
        "event": "message_created",
    }
    body = json.dumps(payload).encode()
    webhook = ChatwootWebhook(
        DownInbox(),
        token=TOKEN,
        secret=desk.bot_secret,
        allowed_sources=(),
        default_account="",
        forward_private_notes=False,
    )
    app = Starlette(routes=[webhook.route("/cw/{token}")])
    response = await post(app, f"/cw/{TOKEN}", body, desk.signed_headers(body, "d-1"))
    assert response.status_code == 500
    assert "storage unavailable" in response.json()["error"]


def _conversation(desk: FakeChatwoot) -> int:
    """A conversation with one contact message, without delivering anything."""
    desk.contacts[55] = "Ann"
    conv = Conversation(101, 55)
    desk.conversations[conv.id] = conv
    desk._store(conv, "Help", "incoming", desk._contact(55), private=False)
    return conv.id
