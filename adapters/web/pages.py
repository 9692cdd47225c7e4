"""Server-rendered HTML for the operator view: every value escaped, no template engine."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any, Protocol
from urllib.parse import quote

from bridge.engage.models import ConversationReadFull, MessageRead


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


def thread_url(thread_key: str) -> str:
    return f"/operator/threads/{quote(thread_key, safe='')}"


def layout(title: str, current: str, body: str) -> str:
    links = (("Playground", "/playground"), ("Operator view", "/operator"))
    nav = "".join(
        f'<a href="{href}"{_CURRENT if name == current else ""}>{name}</a>' for name, href in links
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · engage-bridge</title>"
        '<link rel="stylesheet" href="/web/static/style.css"></head><body>'
        f'<header class="top"><h1>engage-bridge</h1><nav>{nav}</nav></header>'
        f"<main>{body}</main></body></html>"
    )


def badge(status: str) -> str:
    safe = escape(status or "unknown")
    return f'<span class="badge {safe}" data-state="{safe}">{safe}</span>'


def _short_time(iso: str) -> str:
    # "2026-11-27T06:00:00.123+00:00" -> "2026-11-27 06:00:00"; operators scan, they do not parse.
    return escape(iso[:19].replace("T", " ")) if iso else ""


def threads_page(rows: Sequence[ThreadRow]) -> str:
    if not rows:
        table = (
            '<p class="empty">No threads yet. '
            'Start one in the <a href="/playground">playground</a>.</p>'
        )
    else:
        table = (
            "<table><thead><tr><th>Thread</th><th>Source</th><th>Conversation</th><th>Agent</th>"
            "<th>Status</th><th>Assignee</th><th>Last activity</th></tr></thead><tbody>"
            + "".join(_thread_row(row) for row in rows)
            + "</tbody></table>"
        )
    body = (
        '<div class="section"><h2>Threads <a class="button" href="/operator">Refresh</a></h2></div>'
        f'<div class="panel table-wrap">{table}</div>'
    )
    return layout("Operator view", "Operator view", body)


def _thread_row(row: ThreadRow) -> str:
    link = thread_url(row.thread_key)
    return (
        f'<tr data-thread="{escape(row.thread_key)}">'
        f'<td class="key"><a href="{escape(link)}"><code>{escape(row.thread_key)}</code></a></td>'
        f"<td>{escape(row.source)}</td>"
        f'<td><a href="{escape(link)}"><code>{escape(row.conversation_id)}</code></a></td>'
        f'<td class="nowrap">{escape(row.agent)}</td>'
        f'<td class="status">{badge(row.status)}</td>'
        f"<td>{escape(row.assignee)}</td>"
        f'<td class="nowrap">{_short_time(row.updated)}</td></tr>'
    )


def thread_page(
    row: ThreadRow,
    conversation: ConversationReadFull | None,
    messages: Iterable[MessageRead],
    problem: str | None = None,
) -> str:
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
        facts.append(("Data", f"<code>{escape(_compact(conversation.data))}</code>"))
        if conversation.summary:
            facts.append(("Summary", escape(conversation.summary)))
    facts_html = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    history = "".join(_history_entry(m) for m in messages)
    if problem:
        history = f'<p class="empty">History unavailable: {escape(problem)}</p>'
    elif not history:
        history = '<p class="empty">No messages yet.</p>'
    body = (
        '<div class="section"><a href="/operator">&larr; All threads</a></div>'
        f'<div class="panel section"><dl class="facts">{facts_html}</dl></div>'
        "<h2>Conversation history</h2>"
        f'<div class="panel history" id="history">{history}</div>'
    )
    return layout(f"Thread {row.thread_key}", "Operator view", body)


def _history_entry(message: MessageRead) -> str:
    role = message.role if message.role in ("user", "agent", "status") else "notice"
    who = message.name or message.role
    return (
        f'<div class="msg {escape(role)}" data-role="{escape(message.role)}">'
        f'<span class="who">{escape(who)} · {_short_time(message.created.isoformat())}</span>'
        f'<span class="text">{escape(message.content)}</span></div>'
    )


def not_found_page(thread_key: str) -> str:
    body = (
        '<div class="section"><a href="/operator">&larr; All threads</a></div>'
        f'<p class="empty">No thread <code>{escape(thread_key)}</code> is known to the bridge.</p>'
    )
    return layout("Unknown thread", "Operator view", body)


def _compact(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)
