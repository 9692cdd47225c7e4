"""Zendesk's ticket events -> messages (pure), on a recorded payload and variations of it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from adapters.desk.schema import InvalidEvent
from adapters.desk.signing import BadSignature
from adapters.zendesk.events import TicketEvent, to_event
from adapters.zendesk.signing import sign, verify
from bridge.models import Origin
from tests.fixtures_helpdesk import recorded as payload

PAYLOAD = Path(__file__).parent / "payloads" / "zendesk" / "comment_added.json"
BOT = "900"


def recorded(**changes: Any) -> dict[str, Any]:
    return payload("zendesk/comment_added", **changes)


def convert(payload: dict[str, Any], **options: Any) -> Any:
    return to_event(TicketEvent.model_validate(payload), bot_user_id=BOT, **options)


def test_customer_comment_is_a_user_message_of_the_ticket_thread() -> None:
    message = convert(recorded())
    assert str(message.thread) == "zendesk:22129848:tickets:5158"
    assert message.message_id == "comment:9876543210"  # numeric ids become strings
    assert message.user_id == "8447388090111"
    assert message.text == "Still failing after the update, any idea?"
    assert message.origin is Origin.USER
    assert message.ticket_id == "5158"
    assert message.is_dm


def test_created_and_its_first_comment_share_one_message_id() -> None:
    first = recorded(
        detail__updated_at="2025-01-08T10:12:07Z",
        event__comment__body="I cannot log in to the mobile app",
    )
    created = recorded(type="zen:event-type:ticket.created", event={})
    created["detail"]["updated_at"] = created["detail"]["created_at"]
    assert convert(first).message_id == convert(created).message_id == "first:5158"
    assert convert(created).user_id == "8447388090111"  # the requester


def test_later_comment_with_the_description_text_is_its_own_message() -> None:
    again = recorded(event__comment__body="I cannot log in to the mobile app")
    assert convert(again).message_id == "comment:9876543210"


def test_agent_comment_is_staff_and_the_bots_own_comment_is_dropped() -> None:
    assert convert(recorded(event__comment__author__is_staff=True)).origin is Origin.STAFF
    assert convert(recorded(event__comment__author__id=int(BOT))) is None


def test_internal_notes_reach_the_agent_only_when_switched_on() -> None:
    note = recorded(event__comment__is_public=False, event__comment__author__is_staff=True)
    assert convert(note) is None
    assert convert(note, forward_internal_notes=True).origin is Origin.STAFF


@pytest.mark.parametrize(
    ("body", "passed"), [("resume", True), ("agent pensions", True), ("resume later", False)]
)
def test_an_agents_note_that_is_a_command_goes_to_the_bridge(body: str, passed: bool) -> None:
    note = recorded(
        event__comment__is_public=False,
        event__comment__author__is_staff=True,
        event__comment__body=body,
    )
    message = convert(note)
    assert (message is not None) is passed
    if message is not None:
        assert message.origin is Origin.STAFF
        assert message.text == body


@pytest.mark.parametrize(
    ("kind", "event", "command"),
    [
        ("status_changed", {"current": "SOLVED", "previous": "OPEN"}, "resolve"),
        ("status_changed", {"current": "OPEN", "previous": "SOLVED"}, None),
        ("status_changed", {"current": "CLOSED", "previous": "SOLVED"}, None),
        ("agent_assignment_changed", {"current": "601", "previous": None}, "handoff"),
        ("agent_assignment_changed", {"current": BOT, "previous": None}, None),
        ("agent_assignment_changed", {"current": None, "previous": "601"}, None),
        ("priority_changed", {"current": "HIGH", "previous": "LOW"}, None),
    ],
)
def test_state_events_map_to_lifecycle_commands(
    kind: str, event: dict[str, Any], command: str | None
) -> None:
    message = convert(recorded(type=f"zen:event-type:ticket.{kind}", event=event))
    if command is None:
        assert message is None
        return
    assert message.command == command
    assert message.origin is Origin.STAFF
    assert message.message_id == "event:d4f5c389-8f4a-4c2e-a1b9-8e4f39c71d52"


def test_comment_event_without_a_comment_names_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        convert(recorded(event={}))
    assert caught.value.field == "event.comment"


def test_signature_round_trip_and_refusals() -> None:
    body, stamp = PAYLOAD.read_bytes(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    now = time.time()
    verify("s3cret", timestamp=stamp, signature=sign("s3cret", stamp, body), body=body, now=now)
    bad = [
        {"signature": sign("other", stamp, body)},
        {"signature": sign("s3cret", stamp, body + b" ")},
        {"timestamp": "2021-03-25T05:09:27Z"},
        {"timestamp": str(int(now))},  # unix seconds are not Zendesk's format
        {"timestamp": "2021-03-25T05:09:27"},  # no zone
        {"signature": None},
    ]
    for change in bad:
        kwargs: dict[str, Any] = {
            "timestamp": stamp,
            "signature": sign("s3cret", stamp, body),
            "body": body,
            **change,
        }
        with pytest.raises(BadSignature):
            verify("s3cret", now=now, **kwargs)
