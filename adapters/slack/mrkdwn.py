"""Standard Markdown turned into Slack mrkdwn, for workspaces that refuse `markdown_text`."""

from __future__ import annotations

import re
from collections.abc import Callable

from adapters.slack.format import split_markdown

TEXT_LIMIT = 40_000
"""chat.postMessage `text`: Slack silently truncates past this, so a part must fit within it."""
MAX_GROWTH = 6
"""mrkdwn is at most 5x its Markdown plus a closing fence (`&` -> `&amp;` is the widest
rewrite; tests/test_slack_mrkdwn.py checks it on generated text): 6x leaves a margin."""

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+")
_QUOTE = re.compile(r"^ {0,3}>[ \t]?")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!~|>])")
_LINK = re.compile(
    r"!?\[([^\]\n]*)\]\(\s*<?([^\s()<>]+(?:\([^\s()<>]*\))?)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^\s<>]+)>")
_BARE_URL = re.compile(r"\b(?:https?://|mailto:)[^\s<>]+[^\s<>.,;:!?)\]'\"]")
_STRONG_EM = re.compile(r"(\*\*\*|___)(?=\S)(.+?)(?<=\S)\1")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_EM_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_STASHED = re.compile("\x00(\\d+)\x00")
_BOLD, _ITALIC = "\x01", "\x02"  # placeholders so a converted `*bold*` is not read as italic


def escape(text: str) -> str:
    """Slack reads `&`, `<` and `>` as control characters in all message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Bold, italic, strike, links, headings (bold lines), bullets and quotes in mrkdwn; code
    kept as code (only `&<>` escaped, which Slack shows as typed); nothing else lost."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.replace("\x00", "").split("\n"):
        opening = _FENCE.match(line)
        if fence is None and opening is not None:
            fence = opening.group(1)
            out.append("```")
        elif fence is not None:
            closes = opening is not None and opening.group(1).startswith(fence)
            if closes and opening is not None and not opening.group(2).strip():
                fence = None
                out.append("```")
            else:
                out.append(escape(line))
        else:
            out.append(_line(line))
    if fence is not None:
        out.append("```")
    return "\n".join(out)


def split_mrkdwn_safe(markdown: str, limit: int) -> list[str]:
    """`split_markdown` parts, each split further until its mrkdwn fits in `TEXT_LIMIT`.

    Deterministic in the text, so a retried reply gets the same parts (idempotency keys)."""
    parts: list[str] = []
    for part in split_markdown(markdown, limit):
        # Converting costs ~0.5 us per character: only parts that could outgrow the limit are.
        fits = len(part) * MAX_GROWTH <= TEXT_LIMIT or len(to_mrkdwn(part)) <= TEXT_LIMIT
        if fits or limit < 100:
            parts.append(part)
        else:
            parts.extend(split_mrkdwn_safe(part, max(len(part) // 2, 50)))
    return parts


def _line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    heading = _HEADING.match(line)
    if heading is not None:
        title = _inline(heading.group(1)).replace(_BOLD, "")
        return _finish(f"{_BOLD}{title}{_BOLD}") if title.strip() else ""
    prefix = ""
    quote = _QUOTE.match(line)
    if quote is not None:
        prefix, line = ">", line[quote.end() :]
    bullet = _BULLET.match(line)
    if bullet is not None and not _RULE.match(line):
        prefix, line = prefix + bullet.group(1) + "• ", line[bullet.end() :]
    return prefix + _finish(_inline(line))


def _inline(text: str) -> str:
    stash: list[str] = []

    def keep(value: str) -> str:
        stash.append(value)
        return f"\x00{len(stash) - 1}\x00"

    def on(pattern: re.Pattern[str], render: Callable[[re.Match[str]], str], s: str) -> str:
        return pattern.sub(lambda m: keep(render(m)), s)

    text = on(_CODE_SPAN, lambda m: "`" + escape(m.group(2)) + "`", text)
    text = on(_ESCAPED, lambda m: escape(m.group(1)), text)
    text = on(_LINK, _link, text)
    text = on(_AUTOLINK, lambda m: "<" + m.group(1).replace("&", "&amp;") + ">", text)
    text = on(_BARE_URL, lambda m: escape(m.group(0)), text)
    text = escape(text)
    text = _STRONG_EM.sub(lambda m: f"{_BOLD}{_ITALIC}{m.group(2)}{_ITALIC}{_BOLD}", text)
    text = _STRONG.sub(lambda m: f"{_BOLD}{m.group(2)}{_BOLD}", text)
    text = _EM_STAR.sub(lambda m: f"{_ITALIC}{m.group(1)}{_ITALIC}", text)
    text = _EM_UNDERSCORE.sub(lambda m: f"{_ITALIC}{m.group(1)}{_ITALIC}", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    while _STASHED.search(text):
        text = _STASHED.sub(lambda m: stash[int(m.group(1))], text)
    return text


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2).replace("&", "&amp;")
    if not label or label == match.group(2):
        return f"<{url}>"
    # A label cannot hold `|` or `>` inside `<url|label>`; emphasis markers stay literal.
    label = _ESCAPED.sub(r"\1", label).replace("|", "¦")
    return f"<{url}|{escape(label)}>"


def _finish(text: str) -> str:
    return text.replace(_BOLD, "*").replace(_ITALIC, "_")
