"""Discord message text: split at 2,000 characters on paragraph and code-fence boundaries."""

from __future__ import annotations

import hashlib
import re

MAX_CONTENT = 2000
MAX_NONCE = 25
_FENCE = "```"


def nonce_for(idempotency_key: str, part: int) -> str:
    """A stable nonce (≤ 25 chars) per reply part, so a retried send is deduplicated by Discord."""
    digest = hashlib.blake2b(f"{idempotency_key}#{part}".encode(), digest_size=12).hexdigest()
    return digest[:MAX_NONCE]


def split_message(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Split `text` into parts of at most `limit` characters.

    Breaks prefer paragraph boundaries, then line boundaries, then spaces. A code block cut in
    two is closed at the end of one part and reopened (same language tag) in the next, so every
    part renders on its own.
    """
    text = text.strip("\n")
    if not text:
        return []
    parts: list[str] = []
    fence_open: str | None = None  # the opening fence line of a block continued from before
    remaining = text
    while remaining:
        if fence_open and remaining.startswith(_FENCE):
            # The cut fell right before the block's closing fence: nothing left to reopen.
            closing, _, remaining = remaining.partition("\n")
            if parts and closing.strip() == _FENCE:
                fence_open = None
                remaining = remaining.lstrip("\n")
                continue
            remaining = f"{closing}\n{remaining}" if remaining else closing
        prefix = f"{fence_open}\n" if fence_open else ""
        budget = limit - len(prefix)
        if len(remaining) <= budget and _fence_state(remaining, fence_open) is None:
            parts.append(prefix + remaining)
            break
        # Leave room for a closing fence in case the cut falls inside a code block.
        cut = _cut_point(remaining, budget - len(_FENCE) - 1)
        chunk, remaining = remaining[:cut].rstrip("\n"), remaining[cut:].lstrip("\n")
        still_open = _fence_state(chunk, fence_open)
        if still_open is not None:
            chunk += f"\n{_FENCE}"
        if chunk.strip():
            parts.append(prefix + chunk)
        fence_open = still_open
        if not remaining and still_open is not None:
            break
    return parts


def _cut_point(text: str, budget: int) -> int:
    if len(text) <= budget:
        return len(text)
    window = text[:budget]
    for separator in ("\n\n", "\n", " "):
        index = window.rfind(separator)
        if index > budget // 4:
            return index + len(separator)
    return budget


def _fence_state(text: str, fence_open: str | None) -> str | None:
    """The opening fence line still open at the end of `text`, given the state before it."""
    current = fence_open
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(_FENCE):
            current = None if current is not None else stripped
    return current


def thread_name(text: str) -> str:
    """A thread title from the message that starts it: its first line, at most 100 chars."""
    first_line = re.sub(r"<@[!&]?\d+>", "", text).strip().split("\n", 1)[0].strip()
    if not first_line:
        return "Conversation"
    return first_line if len(first_line) <= 100 else first_line[:99] + "…"
