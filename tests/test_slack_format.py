"""Markdown splitting and ping neutralising for Slack's markdown_text."""

from __future__ import annotations

import re

import pytest

from adapters.slack.format import MARKDOWN_TEXT_LIMIT, neutralise_pings, split_markdown

_FENCE_LINE = re.compile(r"^```\w*$")


@pytest.mark.parametrize(
    "text",
    [
        "<!channel> look",
        "<!here|here> now",
        "<!everyone>",
        "<!subteam^S0123|@oncall> ping",
        "hey @here and @channel and @Everyone",
    ],
)
def test_broadcast_pings_are_broken(text: str) -> None:
    safe = neutralise_pings(text)
    assert "<!" not in safe
    assert not re.search(r"@(here|channel|everyone)\b", safe, re.IGNORECASE)
    assert safe.replace("\u200d", "") == text


def test_email_addresses_are_left_alone_and_user_mentions_only_when_allowed() -> None:
    text = "mail bob@example.org, ask <@U123>"
    assert neutralise_pings(text, users=False) == text
    assert neutralise_pings(text) == "mail bob@example.org, ask <\u200d@U123>"


def test_short_text_is_one_part() -> None:
    assert split_markdown("hello") == ["hello"]
    assert split_markdown("   \n") == []


def test_long_prose_splits_between_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 60 for i in range(40)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_markdown(text, limit=1000)
    assert all(len(p) <= 1000 for p in parts)
    assert len(parts) > 1
    assert "\n\n".join(parts) == text


def _content_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip() and not line.startswith("```")]


def test_big_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"print({i})  # line {i}" for i in range(400))
    text = f"Intro.\n\n```python\n{code}\n```\n\nOutro."
    parts = split_markdown(text, limit=2000)
    assert all(len(p) <= 2000 for p in parts)
    for part in parts:
        fences = [line for line in part.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, part[:80]
    assert all(p.lstrip().startswith("```python") for p in parts[1:-1])
    assert [line for p in parts for line in _content_lines(p)] == _content_lines(text)


def test_nothing_is_lost_or_reordered_across_parts() -> None:
    blocks = []
    for i in range(30):
        blocks.append(f"Section {i} explains things. " * 20)
        blocks.append(f"```bash\necho step {i}\n" + "ls -la\n" * 40 + "```")
    text = "\n\n".join(blocks)
    parts = split_markdown(text, limit=MARKDOWN_TEXT_LIMIT)
    assert len(parts) > 1
    assert all(len(p) <= MARKDOWN_TEXT_LIMIT for p in parts)
    assert "\n\n".join(parts).replace("\n", "") == text.replace("\n", "")


def test_a_line_longer_than_the_limit_is_cut_at_a_space() -> None:
    text = "word " * 1000
    parts = split_markdown(text, limit=500)
    assert all(len(p) <= 500 for p in parts)
    assert "".join(parts).split() == text.split()
