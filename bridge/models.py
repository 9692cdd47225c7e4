"""Plain, frozen, platform-neutral data: thread keys, inbound messages and replies."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

from bridge.sanitise import clean

_SEPARATOR = ":"
_SPECIAL = re.compile("[%{}]")


def _escape(part: str) -> str:
    # Desk ticket ids and web session ids are free text: keep ':' and '{}' out of keys so the
    # key stays parseable and never breaks the Redis Cluster hash tag around it.
    return part.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def _unescape(part: str) -> str:
    return part.replace("%7D", "}").replace("%7B", "{").replace("%3A", ":").replace("%25", "%")


def _clean_fields(instance: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(instance, name)
        if not isinstance(value, str):
            continue
        cleaned = clean(value)
        if cleaned is not value:
            object.__setattr__(instance, name, cleaned)


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """Where a conversation lives: platform, workspace (team/guild/desk account), channel, thread.

    `str(key)` is the one string format, e.g. `slack:T123:C456:1712345.0001`.
    """

    platform: str
    workspace: str
    channel: str
    thread: str
    # str(key), made once: a turn spells its key ~20 times (Redis keys, logs, ledgers).
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _clean_fields(self, ("platform", "workspace", "channel", "thread"))
        parts = (self.platform, self.workspace, self.channel, self.thread)
        text = _SEPARATOR.join(parts)
        if text.count(_SEPARATOR) != 3 or _SPECIAL.search(text) is not None:
            text = _SEPARATOR.join(_escape(p) for p in parts)
        object.__setattr__(self, "_text", text)

    def __str__(self) -> str:
        return self._text

    @classmethod
    def parse(cls, text: str) -> ThreadKey:
        parts = text.split(_SEPARATOR)
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"not a thread key: {text!r}")
        if "%" in text:  # only _escape writes '%'
            parts = [_unescape(p) for p in parts]
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A reference to a file on the platform; the bytes stay there."""

    name: str
    url: str
    mime_type: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        _clean_fields(self, ("name", "url", "mime_type"))


class Origin(enum.StrEnum):
    """Who wrote an inbound message, as far as the participation policy cares."""

    USER = "user"
    STAFF = "staff"
    BOT = "bot"


_MESSAGE_TEXT_FIELDS = (
    "message_id",
    "user_id",
    "text",
    "user_name",
    "ticket_id",
    "permalink",
    "command",
    "agent",
)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One chat message, normalized at the edge by an adapter's `to_event`.

    `message_id` is the platform's own id: it is the dedupe key. `ticket_id` is what the
    conversation's `data.ticket_id` will say (desk ticket id, or the platform thread id).
    `command` is set when the adapter received an explicit command (slash command, desk action);
    keyword commands typed in a thread are recognised by the core from `text`. `context` holds
    extra facts about where it was written (e.g. the channel a Slack assistant thread was opened
    from), written into a new conversation's `data` under their names. `agent` is the agent a
    thread with no conversation yet starts with (the playground's picker); an adapter sets it
    only for someone allowed to choose the agent, and the core ignores it once the thread has one.
    """

    thread: ThreadKey
    message_id: str
    user_id: str
    text: str
    sent_at: datetime
    user_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    is_dm: bool = False
    mentions_bot: bool = False
    origin: Origin = Origin.USER
    ticket_id: str | None = None
    permalink: str | None = None
    command: str | None = None
    context: tuple[tuple[str, str], ...] = ()
    agent: str | None = None

    def __post_init__(self) -> None:
        # Every adapter builds one of these from untrusted text before anything is stored: the
        # one place no adapter can forget (an unpaired surrogate used to crash every later turn).
        _clean_fields(self, _MESSAGE_TEXT_FIELDS)
        if self.context:
            pairs = tuple((clean(k), clean(v)) for k, v in self.context)
            object.__setattr__(self, "context", pairs)

    @property
    def platform(self) -> str:
        return self.thread.platform


class Standing(enum.IntEnum):
    """A thread's standing as the participation policy sees it; the store reads it in the same
    step as it enqueues, so the policy decides for each standing beforehand (bridge.policy)."""

    UNKNOWN = 1  # no record, nothing pending
    KNOWN = 2  # a record not owned by a human, or messages waiting for their first turn
    HUMAN = 3  # a record owned by a human


class ReplyKind(enum.StrEnum):
    AGENT = "agent"
    NOTICE = "notice"


@dataclass(frozen=True, slots=True)
class Reply:
    """Text to post into a thread.

    `idempotency_key` is stable across retries of the same turn (the agent message id, or a
    notice id); adapters use it where the platform can deduplicate (e.g. a Discord nonce).
    `run_id` is the Engage Smarter run that produced an agent answer: feedback on the posted
    message is written to it (`bridge.feedback`). `fresh`: an agent answer posted by the attempt
    whose live stream brought it, on a batch no earlier attempt began (no journal at BEGIN), so
    nothing can have posted it yet: the posted ledger is not asked first, and an adapter that
    marks parts pending before posting them (Slack) skips the mark. `retried`: an agent answer of
    a turn an earlier attempt began, which may have posted it fresh, unmarked: such an adapter
    looks up a part it has no record of on the platform before posting it.
    """

    thread: ThreadKey
    text: str
    idempotency_key: str
    kind: ReplyKind = ReplyKind.AGENT
    conversation_id: str | None = None
    agent: str | None = None
    reply_to_message_id: str | None = None
    run_id: str | None = None
    fresh: bool = False
    retried: bool = False


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What the core did with a submitted message. Raised errors mean: not stored, retry."""

    accepted: bool
    reason: str
    extra: dict[str, str] = field(default_factory=dict)
