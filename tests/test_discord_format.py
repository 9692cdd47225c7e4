"""Splitting agent text at Discord's 2,000-character limit; nonces and thread names."""

from __future__ import annotations

import pytest

from adapters.discord.format import MAX_CONTENT, nonce_for, split_message, thread_name


def _fences_balanced(part: str) -> bool:
    return part.count("```") % 2 == 0


def test_short_text_is_one_part() -> None:
    assert split_message("Hello **there**.") == ["Hello **there**."]


def test_empty_text_is_no_parts() -> None:
    assert split_message("\n\n") == []


def test_paragraph_boundaries_are_preferred() -> None:
    first, second = "a" * 1500, "b" * 1500
    assert split_message(f"{first}\n\n{second}") == [first, second]


def test_a_six_thousand_character_answer_splits_in_order_within_the_limit() -> None:
    paragraphs = [f"{i:04d} " + " ".join(["lorem ipsum"] * 40) for i in range(13)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 6000

    parts = split_message(text)

    assert all(len(p) <= MAX_CONTENT for p in parts)
    assert len(parts) == 4
    assert "\n\n".join(parts) == text


def test_a_code_block_cut_in_two_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"x_{i} = {i}" for i in range(400))
    text = f"Here:\n\n```python\n{code}\n```\n\nDone."

    parts = split_message(text)

    assert len(parts) > 1
    assert all(len(p) <= MAX_CONTENT for p in parts)
    assert all(_fences_balanced(p) for p in parts)
    assert all(p.startswith("```python\n") for p in parts[1:-1])
    rebuilt = "".join(parts)
    assert all(f"x_{i} = {i}\n" in rebuilt or f"x_{i} = {i}" in rebuilt for i in range(400))
    assert parts[-1].endswith("Done.")


def test_a_line_longer_than_the_limit_is_cut_hard() -> None:
    parts = split_message("z" * 4500)

    assert [len(p) for p in parts] == [MAX_CONTENT - 4, MAX_CONTENT - 4, 4500 - 2 * 1996]


def test_an_unclosed_fence_from_the_agent_is_closed() -> None:
    parts = split_message("```\nprint(1)\n" + "y = 2\n" * 500)

    assert all(_fences_balanced(p) for p in parts)


@pytest.mark.parametrize("part", [0, 1, 17])
def test_nonces_are_stable_short_and_distinct_per_part(part: int) -> None:
    nonce = nonce_for("agent-message-123", part)

    assert nonce == nonce_for("agent-message-123", part)
    assert len(nonce) <= 25
    assert nonce != nonce_for("agent-message-123", part + 1)
    assert nonce != nonce_for("agent-message-124", part)


def test_thread_names_come_from_the_first_line_without_mentions() -> None:
    assert thread_name("<@123> how do I\nsecond line") == "how do I"
    assert thread_name("<@123>") == "Conversation"
    assert len(thread_name("q" * 300)) == 100
