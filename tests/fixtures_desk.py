"""Fixtures for the desk tests: a fake helpdesk receiving callbacks, and signed event builders."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.desk.signing import signed_headers
from tests.fakes.desk import FakeDesk

DESK_SECRET = "desk-webhook-secret"
CALLBACK_SECRET = "desk-callback-secret"

_event_ids = itertools.count(1)


def desk_event(
    type_: str = "ticket.created",
    *,
    ticket_id: str = "T-100",
    account_id: str = "acme",
    body: str | None = "How do I change my pension contributions?",
    author_id: str = "cust-1",
    author_role: str = "customer",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid desk event; `body=None` leaves the comment out."""
    event: dict[str, Any] = {
        "id": event_id or f"evt-{next(_event_ids)}-{time.monotonic_ns()}",
        "type": type_,
        "occurred_at": "2026-11-27T06:00:00Z",
        "account_id": account_id,
        "ticket": {
            "id": ticket_id,
            "subject": "Pension contributions",
            "requester": {"id": "cust-1", "name": "Ann Customer"},
        },
    }
    if body is not None:
        event["comment"] = {
            "id": f"c-{event['id']}",
            "author": {"id": author_id, "name": "Someone", "role": author_role},
            "body": body,
        }
    event.update(extra)
    return event


def signed(
    event: dict[str, Any] | bytes, *, secret: str = DESK_SECRET, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of a signed webhook delivery."""
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    return raw, signed_headers(secret, int(time.time()) if at is None else at, raw)


@pytest.fixture
async def fake_desk() -> AsyncIterator[FakeDesk]:
    desk = FakeDesk(secret=CALLBACK_SECRET)
    await desk.start()
    yield desk
    await desk.close()
