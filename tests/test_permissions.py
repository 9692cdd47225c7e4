"""The permission table for thread commands (bridge.permissions.decide, pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.config import Staff
from bridge.models import InboundMessage, Origin, ThreadKey
from bridge.permissions import Caller, Target, decide, decide_for

STAFF = Caller("S1", staff=True)
STARTER = Caller("U1", staff=False)
OTHER = Caller("U2", staff=False)
ALL = ("status", "handoff", "reset", "resolve", "agent", "resume")


@pytest.mark.parametrize("status", [None, "bot", "human", "resolved"])
def test_staff_may_run_every_command_on_a_thread_they_can_see(status: str | None) -> None:
    for command in ALL:
        assert decide(command, STAFF, Target(status, starter="U1")).allowed


def test_nobody_acts_on_a_thread_in_a_channel_they_cannot_see() -> None:
    hidden = Target("bot", starter="U1", visible=False)
    for caller in (STAFF, STARTER, OTHER):
        for command in ALL:
            verdict = decide(command, caller, hidden)
            assert not verdict.allowed
            assert "member" in verdict.reason


def test_the_starter_may_ask_for_a_person_reset_and_resolve_while_the_bot_holds_it() -> None:
    bot = Target("bot", starter="U1")
    assert {c for c in ALL if decide(c, STARTER, bot).allowed} == {
        "status",
        "handoff",
        "reset",
        "resolve",
    }


@pytest.mark.parametrize("status", ["human", "resolved"])
def test_a_staff_held_thread_is_out_of_the_starters_hands_except_status_and_handoff(
    status: str,
) -> None:
    held = Target(status, starter="U1")
    assert {c for c in ALL if decide(c, STARTER, held).allowed} == {"status", "handoff"}
    assert "Only staff" in decide("resume", STARTER, held).reason


def test_anyone_else_may_only_ask_for_the_status() -> None:
    for status in ("bot", "human", "resolved"):
        allowed = {c for c in ALL if decide(c, OTHER, Target(status, starter="U1")).allowed}
        assert allowed == {"status"}


def test_a_thread_without_a_conversation_treats_its_caller_as_the_starter_but_not_as_staff() -> (
    None
):
    fresh = Target(None)
    assert {c for c in ALL if decide(c, OTHER, fresh).allowed} == {
        "status",
        "handoff",
        "reset",
        "resolve",
    }


def test_an_unknown_starter_is_the_dm_user_and_nobody_in_a_channel() -> None:
    assert decide("reset", OTHER, Target("bot", is_dm=True)).allowed
    assert not decide("reset", OTHER, Target("bot", is_dm=False)).allowed


def message(platform: str, origin: Origin = Origin.USER, user: str = "U9") -> InboundMessage:
    return InboundMessage(
        thread=ThreadKey(platform, "w", "c", "t"),
        message_id="m1",
        user_id=user,
        text="resume",
        sent_at=datetime.now(UTC),
        origin=origin,
    )


def test_staff_comes_from_the_message_origin_the_id_lists_and_the_local_console() -> None:
    staff = Staff(slack_user_ids=["UST"])

    def may_resume(m: InboundMessage) -> bool:
        return decide_for(m, "resume", staff, status="human", starter="U1").allowed

    assert not may_resume(message("slack"))
    assert may_resume(message("slack", user="UST"))
    assert may_resume(message("discord", Origin.STAFF))
    assert may_resume(message("console"))
