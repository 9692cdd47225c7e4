"""The Markdown -> Slack mrkdwn converter used where Slack refuses `markdown_text`."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.format import neutralise_pings, split_markdown
from adapters.slack.mrkdwn import MAX_GROWTH, TEXT_LIMIT, split_mrkdwn_safe, to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("~~gone~~", "~gone~"),
        ("***both***", "*_both_*"),
        ("**bold _nested_ here**", "*bold _nested_ here*"),
        ("*italic with **bold** inside*", "_italic with *bold* inside_"),
        ("[docs](https://example.com/a)", "<https://example.com/a|docs>"),
        ("<https://example.com/a>", "<https://example.com/a>"),
        ("![chart](https://example.com/c.png)", "<https://example.com/c.png|chart>"),
        ("# Title", "*Title*"),
        ("### Title with **bold** ###", "*Title with bold*"),
        ("- one\n* two\n  + three\n1. four", "• one\n• two\n  • three\n1. four"),
        ("> quoted **line**", ">quoted *line*"),
        ("---", "──────────"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("snake_case_name, 2*3*4 and a * b * c", "snake_case_name, 2*3*4 and a * b * c"),
    ],
)
def test_standard_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_code_spans_keep_their_stars_and_underscores() -> None:
    text = "Use `a*b*c` or `__init__` with **care**"
    assert to_mrkdwn(text) == "Use `a*b*c` or `__init__` with *care*"


def test_fenced_code_is_kept_verbatim_apart_from_slack_control_characters() -> None:
    text = "Run:\n```python\nx = a*b < c & d  # **not bold** [no](link)\n```\n**after**"
    assert to_mrkdwn(text) == (
        "Run:\n```\nx = a*b &lt; c &amp; d  # **not bold** [no](link)\n```\n*after*"
    )


def test_an_unclosed_fence_is_closed() -> None:
    assert to_mrkdwn("```\ncode *x*") == "```\ncode *x*\n```"


def test_urls_with_underscores_are_not_italicised() -> None:
    text = "See [the_guide](https://ex.com/_a_/b_c?x=1&y=2) or https://ex.com/_x_/y_z."
    assert to_mrkdwn(text) == (
        "See <https://ex.com/_a_/b_c?x=1&amp;y=2|the_guide> or https://ex.com/_x_/y_z."
    )


def test_a_link_label_cannot_break_out_of_the_link() -> None:
    assert to_mrkdwn("[a|b>c](https://ex.com)") == "<https://ex.com|a¦b&gt;c>"


def test_pings_neutralised_before_conversion_stay_harmless() -> None:
    text = neutralise_pings("@channel <!here> <!subteam^S1> <@U123> [x](https://e.com)")
    out = to_mrkdwn(text)
    for ping in ("<!here>", "<!subteam", "<@U123>", "<!channel>"):
        assert ping not in out
    assert "@channel" not in out
    assert "<https://e.com|x>" in out


def test_agent_text_cannot_forge_slack_control_sequences() -> None:
    assert to_mrkdwn("<!everyone> <https://evil|x>") == "&lt;!everyone&gt; <https://evil|x>"
    assert "<" not in to_mrkdwn("<script>`<!here>`</script>")


def test_parts_fit_slack_text_limit_after_escaping() -> None:
    text = "&" * 11_000 + "\n\n" + "words " * 100
    assert split_markdown(text) == [text]  # one `markdown_text` part ...
    parts = split_mrkdwn_safe(text, 12_000)
    assert len(parts) > 1  # ... but its mrkdwn (5x longer) needs two
    assert all(len(to_mrkdwn(p)) <= TEXT_LIMIT for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_ordinary_text_is_split_as_for_markdown_text() -> None:
    text = "\n\n".join(f"Paragraph {i}. " + "words " * 400 for i in range(12))
    assert split_mrkdwn_safe(text, 12_000) == split_markdown(text, 12_000)


# Markdown's and mrkdwn's special characters and the constructs to_mrkdwn rewrites.
_PIECES = st.sampled_from(
    ["&", "<", ">", "*", "**", "***", "_", "__", "~~", "`", "```", "~~~", "# ", "- ", "> ",
     "\n", " ", "[", "](", ")", "|", "\\", "\\&", "http://a.b/&x", "<http://a&b>", "---",
     "[&](http://u&v)", "mailto:x@y", "\x00", "a"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_PIECES, min_size=1, max_size=60).map("".join))
def test_mrkdwn_grows_at_most_five_times_plus_a_closing_fence(markdown: str) -> None:
    # split_mrkdwn_safe converts only parts longer than TEXT_LIMIT / MAX_GROWTH on this bound.
    assert len(to_mrkdwn(markdown)) <= 5 * len(markdown) + 4 < MAX_GROWTH * len(markdown) + 5
