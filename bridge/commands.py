"""Keyword commands typed to the bot (`reset`, `agent <name>`, `status`, ...): a pure parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.models import InboundMessage

NAMES = frozenset({"reset", "agent", "status", "handoff", "resume", "resolve"})
_TAKES_ARGUMENT = frozenset({"agent"})

# Leading mentions as platforms render them: Slack `<@U123>`, Discord `<@123>` / `<@!123>`,
# plain `@name` from consoles and desks.
_LEADING_MENTION = re.compile(r"^\s*(?:<@!?[\w.-]+>|@[\w.-]+)[\s,:]*")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str | None = None


def parse(message: InboundMessage) -> Command | None:
    """The command in `message`, or None.

    Typed keywords count only when the message addresses the bot (mention, DM), and only when the
    whole message is the command: "status of my claim?" is a question, not a command.
    """
    if message.command:
        return _parse_text(message.command)
    if not (message.mentions_bot or message.is_dm):
        return None
    return _parse_text(_strip_mentions(message.text))


def _strip_mentions(text: str) -> str:
    while True:
        stripped = _LEADING_MENTION.sub("", text, count=1)
        if stripped == text:
            return text.strip()
        text = stripped


def _parse_text(text: str) -> Command | None:
    words = text.strip().lstrip("/!").split()
    if not words:
        return None
    name = words[0].lower()
    if name not in NAMES:
        return None
    if name in _TAKES_ARGUMENT:
        return Command(name, words[1]) if len(words) == 2 else None
    return Command(name) if len(words) == 1 else None
