from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bridge.engage.models import ConversationReadFull
from bridge.lifecycle import (
    BOT,
    HUMAN,
    RESOLVED,
    Event,
    apply_transition,
    notice_text,
    transition,
)


def test_staff_message_hands_a_bot_thread_to_that_person() -> None:
    change = transition(BOT, Event.STAFF_MESSAGE, actor="S1")
    assert change is not None
    assert (change.new, change.assignee) == (HUMAN, "S1")


def test_handoff_records_the_staff_member_it_goes_to() -> None:
    change = transition(BOT, Event.HANDOFF, actor="agent-9")
    assert change is not None
    assert (change.new, change.assignee) == (HUMAN, "agent-9")


def test_leaving_the_human_state_clears_the_assignee() -> None:
    for event in (Event.RESUME, Event.RESOLVE):
        change = transition(HUMAN, event, actor="agent-9")
        assert change is not None
        assert change.assignee is None


def test_full_cycle_bot_human_resolved_reopened() -> None:
    status = BOT
    for event, expected in [
        (Event.HANDOFF, HUMAN),
        (Event.RESOLVE, RESOLVED),
        (Event.USER_MESSAGE, BOT),
    ]:
        change = transition(status, event)
        assert change is not None
        status = change.new
        assert status == expected


def test_reopening_can_go_to_a_human() -> None:
    change = transition(RESOLVED, Event.USER_MESSAGE, reopen_to=HUMAN)
    assert change is not None
    assert change.new == HUMAN


def test_events_that_change_nothing_give_no_transition() -> None:
    assert transition(HUMAN, Event.HANDOFF) is None
    assert transition(BOT, Event.RESUME) is None
    assert transition(RESOLVED, Event.RESOLVE) is None
    assert transition(BOT, Event.USER_MESSAGE) is None
    assert transition(HUMAN, Event.STAFF_MESSAGE, actor="S2") is None


def test_resume_gives_the_thread_back_to_the_bot() -> None:
    change = transition(HUMAN, Event.RESUME)
    assert change is not None
    assert change.new == BOT


def test_handoff_note_carries_the_summary_when_there_is_one() -> None:
    change = transition(BOT, Event.HANDOFF)
    assert change is not None
    assert "Summary so far: pension transfer" in notice_text(change, "pension transfer")
    assert "Summary" not in notice_text(change, "  ")


class FakeConversations:
    def __init__(self) -> None:
        self.conversation = ConversationReadFull(
            id="c1",
            org_id="o",
            data={"ticket_id": "T9", "status": "bot"},
            source="slack",
            summary="about pensions",
            created=datetime.now(UTC),
            user_id="u",
        )
        self.updates: list[dict[str, Any]] = []

    async def get_conversation(self, conversation_id: str) -> ConversationReadFull:
        return self.conversation

    async def update_conversation(
        self, conversation_id: str, *, data: Any = None, source: Any = None
    ) -> ConversationReadFull:
        self.updates.append({"data": data, "source": source})
        return self.conversation


async def test_applying_a_transition_keeps_data_and_source_and_posts_a_note() -> None:
    store = FakeConversations()
    notes: list[str] = []

    async def post(text: str) -> None:
        notes.append(text)

    change = transition(BOT, Event.STAFF_MESSAGE, actor="S1")
    assert change is not None
    when = datetime(2026, 1, 2, tzinfo=UTC)
    await apply_transition(store, "c1", change, post, now=when)
    [update] = store.updates
    assert update["source"] == "slack"
    assert update["data"] == {
        "ticket_id": "T9",
        "status": "human",
        "assignee": "S1",
        "status_changed_at": when.isoformat(),
    }
    assert notes
    assert "about pensions" in notes[0]
