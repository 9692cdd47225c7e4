"""Pure converters from Slack event and slash-command payloads to `InboundMessage`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.models import Attachment, InboundMessage, Origin, ThreadKey

PLATFORM = "slack"

# Subtypes that are a person (or another bot) saying something; every other subtype (edits,
# deletes, joins, topic changes, ...) is housekeeping and never reaches the agent.
_SPOKEN_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message", "bot_message"})
_LINK = re.compile(r"<(https?://[^>|]+)(?:\|([^>]+))?>")
_CHANNEL_REF = re.compile(r"<#[A-Z0-9]+\|([^>]+)>")
_PERMALINK = re.compile(
    r"https://[^/\s]+/archives/(?P<channel>[A-Z0-9]+)/p(?P<digits>\d{16})"
    r"(?:\?thread_ts=(?P<thread>\d+\.\d+))?"
)
_BARE_TS = re.compile(r"^\d{10}\.\d{6}$")
_THREAD_COMMANDS = frozenset({"reset", "agent", "status", "handoff", "resume", "resolve"})


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is in its workspace, from `auth.test`."""

    team_id: str
    user_id: str
    bot_id: str
    workspace_url: str  # "https://acme.slack.com/"


def to_event(
    body: Mapping[str, Any], bot: BotIdentity, staff: frozenset[str] = frozenset()
) -> InboundMessage | None:
    """The message in an Events API body, or None when nobody said anything to act on."""
    event = body.get("event")
    if not isinstance(event, Mapping) or event.get("type") not in ("message", "app_mention"):
        return None
    if event.get("subtype") not in _SPOKEN_SUBTYPES or event.get("hidden"):
        return None
    if event.get("user") == bot.user_id or (event.get("bot_id") and event["bot_id"] == bot.bot_id):
        return None
    user = event.get("user") or event.get("bot_id")
    channel, ts = event.get("channel"), event.get("ts")
    if not (user and channel and ts):
        return None
    attachments = _attachments(event.get("files"))
    raw_text = str(event.get("text") or "")
    if not raw_text.strip() and not attachments:
        return None
    team = str(body.get("team_id") or event.get("team") or bot.team_id)
    thread_ts = str(event.get("thread_ts") or ts)
    return InboundMessage(
        thread=ThreadKey(PLATFORM, team, str(channel), thread_ts),
        message_id=message_id(str(channel), str(ts)),
        user_id=str(user),
        text=plain_text(raw_text, bot.user_id),
        sent_at=datetime.fromtimestamp(float(ts), UTC),
        user_name=_user_name(event),
        attachments=attachments,
        is_dm=event.get("channel_type") == "im",
        mentions_bot=event["type"] == "app_mention" or f"<@{bot.user_id}>" in raw_text,
        origin=_origin(event, staff),
        ticket_id=thread_ts,
        permalink=permalink(bot.workspace_url, str(channel), thread_ts),
    )


def message_id(channel: str, ts: str) -> str:
    """One id per post, so its `app_mention` and `message` twins dedupe to one turn."""
    return f"{channel}:{ts}"


def permalink(workspace_url: str, channel: str, ts: str) -> str:
    """Slack's documented permalink shape; building it saves a rate-limited call per message."""
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def plain_text(text: str, bot_user_id: str) -> str:
    """Slack's wire text as a person would read it: no bot mention, links and entities undone."""
    text = text.replace(f"<@{bot_user_id}>", "")
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = _CHANNEL_REF.sub(lambda m: f"#{m.group(1)}", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.strip()


def _attachments(files: Any) -> tuple[Attachment, ...]:
    if not isinstance(files, list):
        return ()
    return tuple(
        Attachment(
            name=str(f.get("name") or f.get("title") or f.get("id", "file")),
            url=str(f.get("url_private") or f.get("permalink") or ""),
            mime_type=f.get("mimetype"),
            size=f.get("size"),
        )
        for f in files
        if isinstance(f, Mapping)
    )


def _user_name(event: Mapping[str, Any]) -> str | None:
    profile = event.get("user_profile")
    if isinstance(profile, Mapping):
        name = profile.get("display_name") or profile.get("real_name") or profile.get("name")
        return str(name) if name else None
    username = event.get("username")
    return str(username) if username else None


def _origin(event: Mapping[str, Any], staff: frozenset[str]) -> Origin:
    if event.get("bot_id") or event.get("subtype") == "bot_message":
        return Origin.BOT
    return Origin.STAFF if event.get("user") in staff else Origin.USER


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """A parsed `/engage ...`: a thread command, or `ask` (a new question, no thread yet)."""

    name: str
    argument: str
    thread: ThreadKey | None


def parse_slash_command(form: Mapping[str, Any]) -> SlashCommand | None:
    """`/engage <reset|agent NAME|status|handoff|resume|resolve> <thread link>` or `ask ...`."""
    words = str(form.get("text") or "").split()
    if not words:
        return None
    name = words[0].lower()
    team, channel = str(form.get("team_id", "")), str(form.get("channel_id", ""))
    if name == "ask":
        question = str(form.get("text", "")).strip()[3:].strip()
        return SlashCommand("ask", question, None) if question else None
    if name not in _THREAD_COMMANDS:
        return None
    rest = words[1:]
    thread = _thread_from_words(rest, team, channel)
    if thread is None and form.get("thread_ts"):
        thread = ThreadKey(PLATFORM, team, channel, str(form["thread_ts"]))
    arguments = [w for w in rest if not (_PERMALINK.match(w.strip("<>")) or _BARE_TS.match(w))]
    if thread is None or (name == "agent") != (len(arguments) == 1):
        return None
    return SlashCommand(name, " ".join(arguments), thread)


def _thread_from_words(words: list[str], team: str, channel: str) -> ThreadKey | None:
    for word in words:
        link = _PERMALINK.match(word.strip("<>"))
        if link:
            digits = link["digits"]
            ts = link["thread"] or f"{digits[:10]}.{digits[10:]}"
            return ThreadKey(PLATFORM, team, link["channel"], ts)
        if _BARE_TS.match(word):
            return ThreadKey(PLATFORM, team, channel, word)
    return None


def command_digest(form: Mapping[str, Any]) -> str:
    """A stable id for one invocation of a slash command: the same for every replay of its
    signed body (Slack gives each invocation its own `trigger_id`)."""
    fields = ("team_id", "user_id", "channel_id", "command", "text", "trigger_id")
    joined = "\x1f".join(str(form.get(name, "")) for name in fields)
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()[:32]


def command_to_event(
    form: Mapping[str, Any],
    command: SlashCommand,
    thread: ThreadKey,
    bot: BotIdentity,
    staff: frozenset[str] = frozenset(),
) -> InboundMessage:
    """The InboundMessage for a slash command aimed at `thread` (for `ask`: the new thread)."""
    text = command.argument if command.name == "ask" else f"{command.name} {command.argument}"
    user = str(form.get("user_id", ""))
    # `ask` is a question whose post (the thread root) the bot made; thread commands are
    # unique per invocation, which Slack marks with a trigger id.
    msg_id = (
        message_id(thread.channel, thread.thread)
        if command.name == "ask"
        else f"command:{form.get('trigger_id', '')}"
    )
    return InboundMessage(
        thread=thread,
        message_id=msg_id,
        user_id=user,
        text=text.strip(),
        sent_at=datetime.now(UTC),
        user_name=str(form.get("user_name") or "") or None,
        is_dm=thread.channel.startswith("D"),
        mentions_bot=True,
        ticket_id=thread.thread,
        permalink=permalink(bot.workspace_url, thread.channel, thread.thread),
        # Staff user groups are known only here; the core's permission check needs them. An
        # `ask` stays a user's question (a staff origin would only be recorded).
        origin=Origin.STAFF if command.name != "ask" and user in staff else Origin.USER,
        command=None if command.name == "ask" else text.strip(),
    )
