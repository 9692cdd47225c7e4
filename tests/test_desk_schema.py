"""The desk event schema and its conversion to InboundMessage, on plain payloads."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

import pytest

from adapters.desk.schema import DeskEvent, InvalidEvent, parse_event, to_event
from bridge.models import InboundMessage, Origin, ThreadKey
from tests.fixtures_desk import desk_event


def parse(event: dict[str, Any]) -> DeskEvent:
    return parse_event(json.dumps(event).encode())


def convert(event: dict[str, Any], staff_ids: Collection[str] = ()) -> InboundMessage:
    message = to_event(parse(event), staff_ids=staff_ids)
    assert message is not None
    return message


def test_ticket_created_becomes_a_user_message_in_the_ticket_thread() -> None:
    message = convert(desk_event("ticket.created", event_id="e1", ticket_id="T:1"))
    assert message is not None
    assert message.thread == ThreadKey("desk", "acme", "tickets", "T:1")
    assert message.message_id == "e1"
    assert message.ticket_id == "T:1"
    assert message.user_id == "cust-1"
    assert message.origin is Origin.USER
    assert message.is_dm
    assert message.text.startswith("How do I")


def test_ticket_created_without_a_comment_uses_the_subject() -> None:
    message = convert(desk_event("ticket.created", body=None))
    assert message.text == "Pension contributions"


def test_agent_comment_is_staff_and_hands_off() -> None:
    event = desk_event("ticket.agent_comment", author_id="agent-7", author_role="agent")
    message = convert(event)
    assert message.origin is Origin.STAFF
    assert message.user_id == "agent-7"
    assert message.command is None


def test_customer_comment_from_a_configured_staff_id_is_staff() -> None:
    message = convert(desk_event("ticket.comment", author_id="agent-9"), staff_ids={"agent-9"})
    assert message.origin is Origin.STAFF


@pytest.mark.parametrize(
    ("type_", "command"),
    [("ticket.assigned", "handoff"), ("ticket.solved", "resolve"), ("ticket.reopened", "resume")],
)
def test_ticket_actions_become_commands(type_: str, command: str) -> None:
    event = desk_event(type_, body=None, assignee={"id": "agent-7", "name": "Bob"})
    message = convert(event)
    assert message.command == command
    assert message.origin is Origin.STAFF
    assert message.user_id == "agent-7"


def test_reopened_with_a_customer_comment_is_a_user_message() -> None:
    message = convert(desk_event("ticket.reopened", body="Still broken"))
    assert message.command is None
    assert message.origin is Origin.USER
    assert message.text == "Still broken"


def test_unknown_event_type_converts_to_none() -> None:
    assert to_event(parse(desk_event("ticket.tagged"))) is None


def test_comment_event_without_comment_names_the_missing_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        to_event(parse(desk_event("ticket.comment", body=None)))
    assert caught.value.field == "comment"


def test_assigned_without_assignee_names_the_missing_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        to_event(parse(desk_event("ticket.assigned", body=None)))
    assert caught.value.field == "assignee"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["ticket"].pop("requester"), "ticket.requester"),
        (lambda e: e.update(occurred_at="yesterday"), "occurred_at"),
        (lambda e: e.update(account_id=""), "account_id"),
        (lambda e: e["comment"].update(body=""), "comment.body"),
        (lambda e: e.pop("id"), "id"),
    ],
)
def test_invalid_events_name_the_bad_field(
    mutate: Callable[[dict[str, Any]], object], field: str
) -> None:
    event = desk_event("ticket.comment")
    mutate(event)
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps(event).encode())
    assert caught.value.field == field


def test_body_that_is_not_json_is_invalid() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(b"{not json")
    assert "json" in caught.value.problem.lower()
