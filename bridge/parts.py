"""An answer's parts, bounded: a runaway answer ends with a note instead of flooding a thread."""

from __future__ import annotations

DEFAULT_MAX_PARTS = 10
"""Slack parts are up to 12,000 characters (120,000 in all), Discord's 2,000 (20,000): far more
than any useful answer, while a 10 MB echo made 834 chat.postMessage calls before this bound."""


def note(shown: int, total: int) -> str:
    return (
        f"(This answer was {total} messages long; only the first {shown} are shown here. "
        "The whole answer is kept in the conversation.)"
    )


def bounded(parts: list[str], max_parts: int = DEFAULT_MAX_PARTS) -> list[str]:
    """At most `max_parts` parts: the first `max_parts - 1` and a note saying what was left out.

    Pure and deterministic, so a retried send posts (and skips) exactly the same parts.
    """
    if len(parts) <= max_parts:
        return parts
    shown = max(max_parts - 1, 1)
    return [*parts[:shown], note(shown, len(parts))]
