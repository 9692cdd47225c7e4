from __future__ import annotations

from bridge.config import Policy, Staff
from bridge.models import Origin, Standing
from bridge.policy import Action, decide, decide_each, is_staff
from tests.fixtures_core import message, thread_key

POLICY = Policy(auto_reply_channels=["CAUTO"], forum_channels=["CFORUM"])
STAFF = Staff(slack_user_ids=["USTAFF"])


def action(msg: object, known: bool = False, status: str | None = None, **kw: object) -> Action:
    policy = Policy(**{**POLICY.model_dump(), **kw})
    return decide(msg, known, status, policy, STAFF).action  # type: ignore[arg-type]


def test_direct_messages_and_mentions_are_answered() -> None:
    assert action(message(is_dm=True)) is Action.ANSWER
    assert action(message(is_dm=False, mentions_bot=True)) is Action.ANSWER


def test_dms_and_mentions_can_be_switched_off() -> None:
    assert action(message(is_dm=True), answer_dms=False) is Action.IGNORE
    assert action(message(is_dm=False, mentions_bot=True), answer_mentions=False) is Action.IGNORE


def test_unaddressed_channel_messages_are_ignored_unless_thread_known() -> None:
    msg = message(is_dm=False)
    assert action(msg) is Action.IGNORE
    assert action(msg, known=True, status="bot") is Action.ANSWER


def test_auto_reply_and_forum_channels_are_answered() -> None:
    auto = message(thread_key().__class__("slack", "T", "CAUTO", "1"), is_dm=False)
    forum = message(thread_key().__class__("discord", "G", "CFORUM", "2"), is_dm=False)
    assert action(auto) is Action.ANSWER
    assert action(forum) is Action.ANSWER


def test_bots_are_ignored_unless_allowed() -> None:
    bot = message(origin=Origin.BOT)
    assert action(bot) is Action.IGNORE
    assert action(bot, allow_bots=True) is Action.ANSWER


def test_user_messages_in_human_owned_threads_are_only_recorded() -> None:
    assert action(message(is_dm=True), known=True, status="human") is Action.RECORD_ONLY


def test_commands_go_through_even_in_human_owned_threads() -> None:
    msg = message(text="resume", is_dm=False, mentions_bot=True)
    assert action(msg, known=True, status="human") is Action.ANSWER


def test_staff_messages_in_known_threads_are_recorded_and_elsewhere_ignored() -> None:
    staff = message(origin=Origin.STAFF, is_dm=False)
    assert action(staff, known=True, status="bot") is Action.RECORD_ONLY
    assert action(staff) is Action.IGNORE


def test_staff_is_recognised_by_configured_ids_per_platform() -> None:
    slack = thread_key().__class__("slack", "T", "C", "1")
    assert is_staff(message(slack, user_id="USTAFF"), STAFF)
    assert not is_staff(message(thread_key(), user_id="USTAFF"), STAFF)


def test_the_decision_is_logged_with_its_reason_and_without_content(caplog: object) -> None:
    import logging

    cap = caplog  # pytest's LogCaptureFixture
    cap.set_level(logging.DEBUG, logger="bridge.policy")  # type: ignore[attr-defined]
    decide(message(text="secret words", is_dm=False), False, None, POLICY, STAFF)
    logged = cap.text  # type: ignore[attr-defined]
    assert "not addressed to the bot" in logged
    assert "secret words" not in logged


def test_deciding_for_every_standing_at_once_matches_deciding_for_each() -> None:
    slack = thread_key().__class__("slack", "T", "C", "1")
    auto = thread_key().__class__("slack", "T", "CAUTO", "1")
    cases = [
        message(is_dm=False),
        message(is_dm=True),
        message(is_dm=False, mentions_bot=True),
        message(text="resume", is_dm=False),
        message(origin=Origin.STAFF, is_dm=False),
        message(slack, user_id="USTAFF", is_dm=False),
        message(origin=Origin.BOT),
        message(auto, is_dm=False),
    ]
    standings = {
        Standing.UNKNOWN: (False, None),
        Standing.KNOWN: (True, "bot"),
        Standing.HUMAN: (True, "human"),
    }
    for msg in cases:
        each = decide_each(msg, POLICY, STAFF)
        for standing, (known, status) in standings.items():
            assert each[standing] == decide(msg, known, status, POLICY, STAFF), (msg, standing)
        taken = {s for s in Standing if each[s].action is not Action.IGNORE}
        assert each.accepted() == taken
    assert decide_each(message(text="resume"), POLICY, STAFF).command
    assert not decide_each(message(text="hello"), POLICY, STAFF).command
