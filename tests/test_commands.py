from __future__ import annotations

import pytest

from bridge.commands import Command, parse
from tests.fixtures_core import message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reset", Command("reset")),
        ("<@U0BOT> reset", Command("reset")),
        ("<@!123> Status", Command("status")),
        ("@bridge, handoff", Command("handoff")),
        ("agent parrot", Command("agent", "parrot")),
        ("resume", Command("resume")),
        ("resolve", Command("resolve")),
    ],
)
def test_keyword_commands_addressed_to_the_bot_are_recognised(text: str, expected: Command) -> None:
    assert parse(message(text=text, is_dm=False, mentions_bot=True)) == expected


@pytest.mark.parametrize("text", ["status of my claim?", "agent", "agent a b", "hello", ""])
def test_questions_that_start_like_commands_are_not_commands(text: str) -> None:
    assert parse(message(text=text, is_dm=True)) is None


def test_keywords_in_messages_not_addressed_to_the_bot_are_plain_text() -> None:
    assert parse(message(text="reset", is_dm=False, mentions_bot=False)) is None


def test_the_command_field_from_a_slash_command_wins_over_text() -> None:
    msg = message(text="anything", is_dm=False, command="/agent parrot")
    assert parse(msg) == Command("agent", "parrot")
