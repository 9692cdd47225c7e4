"""Chatwoot Agent Bot events -> messages (pure), and the webhook's authenticity checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from adapters.chatwoot.auth import Forbidden, check_source, check_token, sign, verify
from adapters.chatwoot.events import BotEvent, to_events
from adapters.desk.schema import InvalidEvent
from adapters.desk.signing import BadSignature
from bridge.models import Origin
from tests.fixtures_helpdesk import recorded as payload

PAYLOAD = Path(__file__).parent / "payloads" / "chatwoot" / "message_created.json"


def recorded(**changes: Any) -> dict[str, Any]:
    return payload("chatwoot/message_created", **changes)


def convert(payload: dict[str, Any], bridge_status: str | None = "bot", **options: Any) -> Any:
    event = BotEvent.model_validate(payload)
    return to_events(event, delivery="d-1", bridge_status=bridge_status, **options)


def test_contacts_message_is_a_user_message_of_the_conversation_thread() -> None:
    [message] = convert(recorded())
    assert str(message.thread) == "chatwoot:1:conversations:42"
    assert message.message_id == "message:1234"
    assert (message.user_id, message.user_name) == ("55", "Ann Customer")
    assert message.text == "Where is my order?"
    assert message.origin is Origin.USER
    assert message.ticket_id == "42"


def test_agent_reply_is_staff_and_private_notes_only_when_switched_on() -> None:
    agent = {"id": 66, "name": "Bob", "type": "user"}
    reply = recorded(sender=agent, message_type="outgoing")
    [staff] = convert(reply)
    assert staff.origin is Origin.STAFF
    note = recorded(sender=agent, message_type="outgoing", private=True)
    assert convert(note) == ()
    assert convert(note, forward_private_notes=True)[0].origin is Origin.STAFF


def test_the_bots_own_and_activity_messages_are_dropped() -> None:
    bot = {"id": 7, "name": "Engage Bot", "type": "agent_bot"}
    assert convert(recorded(sender=bot, message_type="outgoing")) == ()
    assert convert(recorded(sender=None, message_type="activity")) == ()


@pytest.mark.parametrize(
    ("chatwoot", "bridge", "expected"),
    [
        ("pending", "bot", [None]),
        ("pending", None, [None]),
        ("pending", "human", ["resume", None]),
        ("pending", "resolved", [None]),  # the message itself reopens the thread
        ("open", "human", [None]),
        ("open", "bot", ["handoff", None]),
        ("open", None, []),  # the humans' conversation, never the bot's
    ],
)
def test_chatwoot_status_is_synced_before_a_contacts_message(
    chatwoot: str, bridge: str | None, expected: list[str | None]
) -> None:
    messages = convert(recorded(conversation__status=chatwoot), bridge_status=bridge)
    assert [m.command for m in messages] == expected
    if len(messages) == 2:
        assert messages[0].message_id == "sync:1234"
        assert messages[0].origin is Origin.STAFF


@pytest.mark.parametrize(
    ("event", "status", "command"),
    [
        ("conversation_resolved", "resolved", "resolve"),
        ("conversation_opened", "open", "handoff"),
        ("conversation_status_changed", "pending", "resume"),
        ("conversation_status_changed", "snoozed", None),
    ],
)
def test_conversation_events_map_to_lifecycle_commands(
    event: str, status: str, command: str | None
) -> None:
    payload = {**recorded()["conversation"], "event": event, "status": status}
    messages = convert(payload)
    assert [m.command for m in messages] == ([command] if command else [])
    if command:
        assert messages[0].message_id == "event:d-1"
        assert str(messages[0].thread) == "chatwoot:1:conversations:42"


def test_an_event_without_an_account_needs_the_configured_one() -> None:
    payload = {**recorded()["conversation"], "event": "conversation_resolved", "status": "resolved"}
    del payload["account"]
    with pytest.raises(InvalidEvent):
        convert(payload)
    [message] = convert(payload, default_account="9")
    assert str(message.thread) == "chatwoot:9:conversations:42"


def test_url_token_and_source_allowlist() -> None:
    check_token("t0ken", "t0ken")
    with pytest.raises(Forbidden):
        check_token("t0ken", "t0ke")
    check_source([], None)
    check_source(["10.0.0.0/8", "::1"], "10.1.2.3")
    for address in ("192.168.1.1", "not-an-address", None):
        with pytest.raises(Forbidden):
            check_source(["10.0.0.0/8"], address)


def test_signature_round_trip_and_refusals() -> None:
    body, now = PAYLOAD.read_bytes(), time.time()
    stamp = str(int(now))
    assert sign("s", stamp, body).startswith("sha256=")
    verify("s", timestamp=stamp, signature=sign("s", stamp, body), body=body, now=now)
    for timestamp, signature in [
        (stamp, sign("other", stamp, body)),
        (stamp, sign("s", stamp, body + b"x")),
        (str(int(now) - 301), sign("s", str(int(now) - 301), body)),
        ("2025-12-05T08:00:00Z", sign("s", "2025-12-05T08:00:00Z", body)),
        (None, sign("s", stamp, body)),
    ]:
        with pytest.raises(BadSignature):
            verify("s", timestamp=timestamp, signature=signature, body=body, now=now)
