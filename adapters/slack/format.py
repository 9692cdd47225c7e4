"""Agent Markdown made safe and sized for Slack's `markdown_text`: no pings, split, never cut."""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKDOWN_TEXT_LIMIT = 12_000
"""chat.postMessage `markdown_text` maximum (Slack rejects longer text)."""

_ZWJ = "\u200d"
# `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^S1>` are Slack's broadcast commands; breaking
# the `<!` pair leaves the words readable and makes them plain text.
_SPECIAL_COMMAND = "<!"
_USER_MENTION = "<@"
_PLAIN_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def neutralise_pings(text: str, *, users: bool = True) -> str:
    """Agent text must never notify a channel, a workspace or a user group; nor, by default
    (`users`), a user: `<@U123>` becomes plain text that still shows the id."""
    text = text.replace(_SPECIAL_COMMAND, "<" + _ZWJ + "!")
    if users:
        text = text.replace(_USER_MENTION, "<" + _ZWJ + "@")
    return _PLAIN_BROADCAST.sub(lambda m: "@" + _ZWJ + m.group(1), text)


@dataclass(frozen=True, slots=True)
class _Piece:
    """A paragraph (with its trailing blank lines) or a whole fenced code block."""

    text: str
    fence_open: str | None = None  # the opening line, e.g. "```python", when a code block
    fence_marker: str = ""


def split_markdown(text: str, limit: int = MARKDOWN_TEXT_LIMIT) -> list[str]:
    """Parts of at most `limit` chars, split between paragraphs or code-block lines.

    A code block split across parts is closed at the end of one and reopened (with its
    language) at the start of the next; a single over-long line is cut as a last resort.
    """
    if len(text) <= limit:
        return [text] if text.strip() else []
    parts: list[str] = []
    current = ""
    for piece in _pieces(text):
        if len(current) + len(piece.text) <= limit:
            current += piece.text
            continue
        if current.strip():
            parts.append(current)
        current = ""
        if len(piece.text) <= limit:
            current = piece.text
            continue
        chunks = _split_piece(piece, limit)
        parts.extend(chunks[:-1])
        current = chunks[-1]
    if current.strip():
        parts.append(current)
    return [p.strip("\n") for p in parts]


def _pieces(text: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    paragraph = ""
    lines = iter(text.splitlines(keepends=True))
    for line in lines:
        fence = _FENCE.match(line.rstrip("\n"))
        if fence is None:
            paragraph += line
            if not line.strip():
                pieces.append(_Piece(paragraph))
                paragraph = ""
            continue
        if paragraph:
            pieces.append(_Piece(paragraph))
            paragraph = ""
        marker = fence.group(1)
        block = line
        for inner in lines:
            block += inner
            closing = _FENCE.match(inner.rstrip("\n"))
            if closing and closing.group(1).startswith(marker) and not closing.group(2).strip():
                break
        pieces.append(_Piece(block, line.rstrip("\n").strip(), marker))
    if paragraph:
        pieces.append(_Piece(paragraph))
    return pieces


def _split_piece(piece: _Piece, limit: int) -> list[str]:
    if piece.fence_open is None:
        return _split_lines(piece.text.splitlines(keepends=True), limit)
    opening, closing = piece.fence_open + "\n", "\n" + piece.fence_marker + "\n"
    body_lines = piece.text.splitlines(keepends=True)[1:]
    last = body_lines[-1].rstrip("\n") if body_lines else ""
    last_fence = _FENCE.match(last)
    if last_fence and last_fence.group(1).startswith(piece.fence_marker):
        body_lines = body_lines[:-1]
    budget = limit - len(opening) - len(closing)
    return [opening + chunk.rstrip("\n") + closing for chunk in _split_lines(body_lines, budget)]


def _split_lines(lines: list[str], limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            cut = _cut_point(line, limit)
            chunks.append(line[:cut])
            line = line[cut:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current or not chunks:
        chunks.append(current)
    return chunks


def _cut_point(line: str, limit: int) -> int:
    space = line.rfind(" ", limit // 2, limit)
    return space + 1 if space > 0 else limit
