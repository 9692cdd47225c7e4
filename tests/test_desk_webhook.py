"""The webhook endpoint's checks, in order: size, signature, schema, then the inbox."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from adapters.desk import DeskAdapter
from bridge.errors import StorageUnavailable
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from tests.fixtures_desk import DESK_SECRET, desk_event, signed


class RecordingInbox:
    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.unavailable = False

    async def submit(self, message: InboundMessage) -> SubmitResult:
        if self.unavailable:
            raise StorageUnavailable("redis down")
        if any(m.message_id == message.message_id for m in self.messages):
            return SubmitResult(False, "duplicate delivery", {"outcome": "duplicate"})
        self.messages.append(message)
        return SubmitResult(True, "direct message", {"outcome": "accepted"})

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return False


@pytest.fixture
def inbox() -> RecordingInbox:
    return RecordingInbox()


@pytest.fixture
async def client(inbox: RecordingInbox) -> AsyncIterator[httpx.AsyncClient]:
    adapter = DeskAdapter(signing_secret=DESK_SECRET, callback_url=None, callback_secret=None)
    app = Starlette(routes=list(adapter.routes(inbox)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://desk.test") as http:
        yield http
    await adapter.aclose()


async def post(client: httpx.AsyncClient, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/desk/webhook", content=raw, headers=headers)


async def test_valid_event_is_submitted_and_acknowledged(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    response = await post(client, *signed(desk_event(event_id="e-1")))
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "event_id": "e-1"}
    assert [m.message_id for m in inbox.messages] == ["e-1"]


async def test_replayed_event_id_is_a_duplicate_no_op(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    event = desk_event(event_id="e-2")
    await post(client, *signed(event))
    response = await post(client, *signed(event))
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert len(inbox.messages) == 1


async def test_bad_signature_is_401_and_nothing_submitted(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    response = await post(client, *signed(desk_event(), secret="not-the-secret"))
    assert response.status_code == 401
    assert response.json()["error"] == "signature does not match"
    assert inbox.messages == []


async def test_stale_timestamp_is_401(client: httpx.AsyncClient, inbox: RecordingInbox) -> None:
    response = await post(client, *signed(desk_event(), at=int(time.time()) - 600))
    assert response.status_code == 401
    assert "away from now" in response.json()["error"]
    assert inbox.messages == []


async def test_invalid_event_is_422_naming_the_field(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    event = desk_event()
    del event["ticket"]["requester"]
    response = await post(client, *signed(event))
    assert response.status_code == 422
    assert response.json()["field"] == "ticket.requester"
    assert "ticket.requester" in response.json()["error"]
    assert inbox.messages == []


async def test_malformed_json_is_422(client: httpx.AsyncClient, inbox: RecordingInbox) -> None:
    response = await post(client, *signed(b'{"id": "x",'))
    assert response.status_code == 422
    assert inbox.messages == []


async def test_unknown_event_type_is_acknowledged_as_ignored(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    response = await post(client, *signed(desk_event("ticket.tagged", event_id="e-3")))
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "event_id": "e-3"}
    assert inbox.messages == []


async def test_body_over_one_mebibyte_is_413_even_without_content_length(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    raw, headers = signed(desk_event(body="x" * (2 * 1024 * 1024)))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    response = await client.post("/desk/webhook", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert inbox.messages == []


async def test_storage_unavailable_is_503_with_retry_after(
    client: httpx.AsyncClient, inbox: RecordingInbox
) -> None:
    inbox.unavailable = True
    response = await post(client, *signed(desk_event()))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0


async def test_error_bodies_are_json_objects(client: httpx.AsyncClient) -> None:
    response = await client.post("/desk/webhook", content=b"{}")
    assert response.status_code == 401
    assert isinstance(json.loads(response.content), dict)
