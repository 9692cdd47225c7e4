"""Text made safe to store and send: no unpaired surrogates, no disallowed control characters."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"

# Any surrogate code point in a `str` fails `.encode("utf-8")` later (Redis, httpx, JSON
# responses); C0 controls other than tab/newline/CR, DEL and C1 controls are never meant as text.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` with every unsafe character replaced by U+FFFD (a valid surrogate pair is joined).

    Pure and cheap on ordinary text (one regex search, no copy when nothing matches).
    """
    if _UNSAFE.search(text) is None:
        return text
    if _SURROGATE.search(text) is not None:
        # A pair a JSON decoder left split (e.g. "\ud83d\ude00") is one real character.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _UNSAFE.sub(REPLACEMENT, text)
