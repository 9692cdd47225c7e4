"""The operator view's HTML: escaped values, status badges, links to each thread's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.web.pages import key_values, thread_page, thread_url, threads_page
from bridge.engage.models import ConversationReadFull, FeedbackRead, MessageRead


@dataclass(frozen=True)
class Row:
    thread_key: str = "desk:acme:tickets:T%3A1"
    conversation_id: str = "conv-1"
    agent: str = "parrot"
    source: str = "desk"
    status: str = "human"
    assignee: str = "<b>agent-7</b>"
    created: str = "2026-11-27T06:00:00.5+00:00"
    updated: str = "2026-11-27T06:05:00.5+00:00"


def message(role: str, content: str, name: str | None = None) -> MessageRead:
    return MessageRead(
        id="m1",
        org_id="o",
        conversation_id="conv-1",
        run_id="r",
        role=role,
        content=content,
        name=name or ("parrot" if role == "agent" else None),
        created=datetime(2026, 11, 27, 6, 1, tzinfo=UTC),
    )


def test_thread_url_quotes_the_key_so_percent_escapes_survive() -> None:
    assert (
        thread_url("desk:acme:tickets:T%3A1") == "/operator/threads/desk%3Aacme%3Atickets%3AT%253A1"
    )


def test_threads_page_lists_conversation_agent_status_and_activity() -> None:
    page = threads_page([Row()])
    assert "conv-1" in page
    assert "parrot" in page
    assert 'data-state="human"' in page
    assert "2026-11-27 06:05:00" in page
    assert f'href="{thread_url(Row().thread_key)}"' in page


def test_values_are_escaped() -> None:
    page = threads_page([Row()])
    assert "<b>agent-7</b>" not in page
    assert "&lt;b&gt;agent-7&lt;/b&gt;" in page


def test_empty_list_points_to_the_playground() -> None:
    assert 'href="/playground"' in threads_page([])


def test_thread_page_shows_history_and_metadata() -> None:
    conversation = ConversationReadFull(
        id="conv-1",
        org_id="o",
        data={"status": "human", "ticket_id": "T:1"},
        source="desk",
        created=datetime(2026, 11, 27, tzinfo=UTC),
        user_id="u",
    )
    page = thread_page(
        Row(), conversation, [message("user", "<script>x</script>"), message("agent", "Hi")]
    )
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>x" not in page
    assert 'data-role="agent"' in page
    assert "<dt>ticket_id</dt><dd><code>T:1</code></dd>" in page


def test_thread_page_reports_unavailable_history() -> None:
    page = thread_page(Row(), None, [], "EngageConnectError")
    assert "History unavailable: EngageConnectError" in page


def test_data_is_a_key_value_list_with_nested_values_and_safe_links() -> None:
    html = key_values(
        {
            "user_id": "<u1>",
            "permalink": "https://acme.slack.com/archives/C1/p1",
            "script": "javascript:alert(1)",
            "nested": {"a": 1, "b": [True, None]},
        }
    )
    assert "<dt>user_id</dt><dd><code>&lt;u1&gt;</code></dd>" in html
    assert 'href="https://acme.slack.com/archives/C1/p1" rel="noopener noreferrer"' in html
    assert 'href="javascript' not in html
    assert '<dd><dl class="kv"><dt>a</dt><dd><code>1</code></dd>' in html
    assert "<code>true</code>" in html
    assert key_values({}) == '<span class="muted">none</span>'


def test_staff_messages_are_marked_as_staff_in_the_history() -> None:
    page = thread_page(Row(), None, [message("user", "I can help", name="staff:U7")])
    assert '<div class="msg staff" data-role="user">' in page
    assert "Staff · U7" in page


def test_the_list_refreshes_itself_and_labels_each_cell_for_phones() -> None:
    page = threads_page([Row()])
    assert '<script src="/web/static/operator.js" defer></script>' in page
    assert 'id="live"' in page
    assert '<td class="status" data-label="Status">' in page
    assert 'rel="icon"' in page


def test_each_answer_shows_the_feedback_given_on_its_run() -> None:
    given = FeedbackRead(
        id="f1", org_id="o", conversation_id="conv-1", run_id="r", user_id="api-user",
        thumbs="down", comment="<wrong> year", description="by slack:U1",
        created=datetime(2026, 11, 27, 6, 2, tzinfo=UTC),
    )  # fmt: skip
    answer, question = message("agent", "You said: hi"), message("user", "hi")
    page = thread_page(Row(), None, [question, answer], feedback={"r": given})
    assert page.count('class="feedback"') == 1
    assert "Feedback: \N{THUMBS DOWN SIGN} \N{LEFT DOUBLE QUOTATION MARK}&lt;wrong&gt; year" in page
    assert "(by slack:U1)" in page
    assert 'class="feedback"' not in thread_page(Row(), None, [answer])
