"""Server-rendered HTML for the operator view: every value escaped, no template engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Protocol
from urllib.parse import quote, urlsplit

from bridge.engage.models import ConversationReadFull, FeedbackRead, MessageRead


class ThreadRow(Protocol):
    """The operator's view of a thread record (bridge.threadmap.ThreadRecord fits)."""

    @property
    def thread_key(self) -> str: ...
    @property
    def conversation_id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def assignee(self) -> str: ...
    @property
    def created(self) -> str: ...
    @property
    def updated(self) -> str: ...


_CURRENT = ' class="current"'
REFRESH_SCRIPT = '<script src="/web/static/operator.js" defer></script>'
# The turn records a staff member's message as a user message named "staff:<user id>".
STAFF_PREFIX = "staff:"


def thread_url(thread_key: str) -> str:
    return f"/operator/threads/{quote(thread_key, safe='')}"


SIGN_OUT = (
    '<form class="sign-out" method="post" action="/web/logout">'
    '<button type="submit">Sign out</button></form>'
)


def layout(
    title: str, current: str, body: str, *, live: bool = False, signed_in: bool = False
) -> str:
    """A page; `live` pages refresh their `#live` part by themselves (operator.js)."""
    links = (("Playground", "/playground"), ("Operator view", "/operator"))
    nav = "".join(
        f'<a href="{href}"{_CURRENT if name == current else ""}>{name}</a>' for name, href in links
    )
    if signed_in:
        nav += SIGN_OUT
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · engage-bridge</title>"
        '<link rel="icon" href="/web/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/web/static/style.css">'
        f"{REFRESH_SCRIPT if live else ''}</head><body>"
        f'<header class="top"><h1>engage-bridge</h1><nav>{nav}</nav></header>'
        f"<main>{body}</main></body></html>"
    )


def badge(status: str) -> str:
    safe = escape(status or "unknown")
    return f'<span class="badge {safe}" data-state="{safe}">{safe}</span>'


def _short_time(iso: str) -> str:
    # "2026-11-27T06:00:00.123+00:00" -> "2026-11-27 06:00:00"; operators scan, they do not parse.
    return escape(iso[:19].replace("T", " ")) if iso else ""


def _refresh_bar(back: str = "") -> str:
    return (
        f'<div class="section toolbar">{back}<span class="refreshed" id="refreshed" '
        'aria-live="polite">Refreshes by itself</span></div>'
    )


_COLUMNS = ("Thread", "Source", "Conversation", "Agent", "Status", "Assignee", "Last activity")


def threads_page(rows: Sequence[ThreadRow], *, signed_in: bool = False) -> str:
    if not rows:
        table = (
            '<p class="empty">No threads yet. '
            'Start one in the <a href="/playground">playground</a>.</p>'
        )
    else:
        head = "".join(f"<th>{name}</th>" for name in _COLUMNS)
        table = (
            f'<table class="threads-table"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(_thread_row(row) for row in rows)
            + "</tbody></table>"
        )
    body = (
        f'<h2>Threads <span class="count">{len(rows)}</span></h2>{_refresh_bar()}'
        f'<div class="panel table-wrap" id="live">{table}</div>'
    )
    return layout("Operator view", "Operator view", body, live=True, signed_in=signed_in)


def _thread_row(row: ThreadRow) -> str:
    link = escape(thread_url(row.thread_key))
    cells = (
        ("key", f'<a href="{link}"><code>{escape(row.thread_key)}</code></a>'),
        ("", escape(row.source)),
        ("conv", f'<a href="{link}"><code>{escape(row.conversation_id)}</code></a>'),
        ("nowrap", escape(row.agent)),
        ("status", badge(row.status)),
        ("", escape(row.assignee) or '<span class="muted">-</span>'),
        ("nowrap", _short_time(row.updated)),
    )
    tds = "".join(
        f'<td class="{css}" data-label="{label}">{value}</td>'
        for label, (css, value) in zip(_COLUMNS, cells, strict=True)
    )
    return f'<tr data-thread="{escape(row.thread_key)}">{tds}</tr>'


def thread_page(
    row: ThreadRow,
    conversation: ConversationReadFull | None,
    messages: Iterable[MessageRead],
    problem: str | None = None,
    *,
    signed_in: bool = False,
    feedback: Mapping[str, FeedbackRead] | None = None,
) -> str:
    """`feedback` maps run ids to the feedback people gave on that run's answers."""
    facts = [
        ("Thread", f"<code>{escape(row.thread_key)}</code>"),
        ("Conversation", f"<code>{escape(row.conversation_id)}</code>"),
        ("Agent", escape(row.agent)),
        ("Status", badge(row.status)),
        ("Assignee", escape(row.assignee) or "-"),
        ("Created", _short_time(row.created)),
        ("Last activity", _short_time(row.updated)),
    ]
    if conversation is not None:
        facts.append(("Source", escape(conversation.source)))
        facts.append(("Data", key_values(conversation.data)))
        if conversation.summary:
            facts.append(("Summary", escape(conversation.summary)))
    facts_html = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    history = "".join(_history_entry(m, feedback or {}) for m in messages)
    if problem:
        history = f'<p class="empty">History unavailable: {escape(problem)}</p>'
    elif not history:
        history = '<p class="empty">No messages yet.</p>'
    body = (
        _refresh_bar('<a href="/operator">&larr; All threads</a>') + '<div id="live">'
        f'<div class="panel section"><dl class="facts">{facts_html}</dl></div>'
        "<h2>Conversation history</h2>"
        f'<div class="panel history" id="history">{history}</div></div>'
    )
    title = f"Thread {row.thread_key}"
    return layout(title, "Operator view", body, live=True, signed_in=signed_in)


def key_values(data: Mapping[str, object]) -> str:
    """`data` as a definition list, nested mappings indented; links only for http(s) URLs."""
    if not data:
        return '<span class="muted">none</span>'
    items = "".join(
        f"<dt>{escape(str(key))}</dt><dd>{_value(value)}</dd>"
        for key, value in sorted(data.items(), key=lambda item: str(item[0]))
    )
    return f'<dl class="kv">{items}</dl>'


def _value(value: object) -> str:
    if isinstance(value, Mapping):
        return key_values(value)
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or '<span class="muted">empty</span>'
    if value is None or value == "":
        return '<span class="muted">-</span>'
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
        url = escape(value)
        return f'<a href="{url}" rel="noopener noreferrer" target="_blank">{url}</a>'
    return f"<code>{escape(text)}</code>"


_THUMBS = {"up": "\N{THUMBS UP SIGN}", "down": "\N{THUMBS DOWN SIGN}"}


def _feedback_note(message: MessageRead, feedback: Mapping[str, FeedbackRead]) -> str:
    given = feedback.get(message.run_id) if message.role == "agent" else None
    if given is None or not (given.thumbs or given.comment):
        return ""
    thumbs = _THUMBS.get(given.thumbs, "")
    comment = (
        f" \N{LEFT DOUBLE QUOTATION MARK}{escape(given.comment)}\N{RIGHT DOUBLE QUOTATION MARK}"
        if given.comment
        else ""
    )
    by = f" ({escape(given.description)})" if given.description else ""
    return f'<span class="feedback">Feedback: {thumbs}{comment}{by}</span>'


def _history_entry(message: MessageRead, feedback: Mapping[str, FeedbackRead]) -> str:
    role = message.role if message.role in ("user", "agent", "status") else "notice"
    who = message.name or message.role
    if message.role == "user" and who.startswith(STAFF_PREFIX):
        role, who = "staff", f"Staff · {who.removeprefix(STAFF_PREFIX)}"
    return (
        f'<div class="msg {escape(role)}" data-role="{escape(message.role)}">'
        f'<span class="who">{escape(who)} · {_short_time(message.created.isoformat())}</span>'
        f'<span class="text">{escape(message.content)}</span>'
        f"{_feedback_note(message, feedback)}</div>"
    )


def not_found_page(thread_key: str) -> str:
    body = (
        '<div class="section"><a href="/operator">&larr; All threads</a></div>'
        f'<p class="empty">No thread <code>{escape(thread_key)}</code> is known to the bridge.</p>'
    )
    return layout("Unknown thread", "Operator view", body)
