"""Which stored messages answer a batch: one run's, never a second run's or an earlier batch's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.engage.models import MessageRead, RunRead, UserMessage
from bridge.reconcile import history_after, reconcile

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def msg(mid: str, role: str, content: str, run_id: str, seconds: float) -> MessageRead:
    return MessageRead(
        id=mid, org_id="o", conversation_id="c", run_id=run_id, role=role, content=content,
        created=at(seconds),
    )  # fmt: skip


def run(rid: str, seconds: float) -> RunRead:
    return RunRead(id=rid, org_id="o", conversation_id="c", agent="parrot", created=at(seconds))


SENT = [UserMessage(content="q2")]


def test_unstored_messages_are_not_saved() -> None:
    tail = [msg("m1", "user", "q1", "r1", 1), msg("m2", "agent", "a1", "r1", 2)]
    assert not reconcile(tail, SENT, [run("r1", 1)]).saved


def test_the_earliest_run_answers_even_when_a_second_run_answered_first() -> None:
    tail = [
        msg("u", "user", "q2", "rA", 10),
        msg("b", "agent", "from B", "rB", 12),
        msg("a", "agent", "from A", "rA", 13),
    ]
    found = reconcile(tail, SENT, [run("rA", 10), run("rB", 11)])
    assert [m.id for m in found.answers] == ["a"]
    assert [r.run_id for r in found.answered] == ["rA", "rB"]


def test_an_answer_already_posted_wins_over_an_earlier_runs_late_answer() -> None:
    tail = [
        msg("u", "user", "q2", "rA", 10),
        msg("b", "agent", "from B", "rB", 12),
        msg("a", "agent", "from A", "rA", 13),
    ]
    found = reconcile(tail, SENT, [run("rA", 10), run("rB", 11)])
    assert [m.id for m in found.chosen({"b"})] == ["b"]
    assert [m.id for m in found.chosen(set())] == ["a"]


def test_a_run_of_an_earlier_batch_answering_late_never_counts() -> None:
    # r1 answered q1 and was still working when q2 was stored; its answer lands after q2.
    tail = [
        msg("u1", "user", "q1", "r1", 1),
        msg("u2", "user", "q2", "r2", 5),
        msg("late", "agent", "You said: q1", "r1", 6),
    ]
    found = reconcile(tail, SENT, [run("r1", 1), run("r2", 5)])
    assert found.saved
    assert found.answers == ()
    assert found.awaiting_run  # r2 stored q2 and works on it


def test_stored_messages_without_a_run_are_not_awaited() -> None:
    tail = [msg("u2", "user", "q2", "added", 5)]
    found = reconcile(tail, SENT, [run("r1", 1)])
    assert found.saved
    assert not found.awaiting_run


def test_a_run_started_after_the_batch_was_stored_works_on_it() -> None:
    tail = [msg("u2", "user", "q2", "added", 5)]
    found = reconcile(tail, SENT, [run("r1", 1), run("r3", 6)])
    assert [r.run_id for r in found.runs] == ["r3"]
    assert found.awaiting_run


def test_without_a_run_list_the_first_run_to_answer_wins() -> None:
    tail = [
        msg("u", "user", "q2", "x", 10),
        msg("b", "agent", "from B", "rB", 12),
        msg("b2", "agent", "more from B", "rB", 12),
        msg("a", "agent", "from A", "rA", 13),
    ]
    found = reconcile(tail, SENT)
    assert [m.id for m in found.answers] == ["b", "b2"]


def test_history_after_the_mark() -> None:
    history = [msg("m1", "user", "q1", "r", 1), msg("m2", "agent", "a", "r", 2)]
    assert [m.id for m in history_after(history, "m1")] == ["m2"]
    assert [m.id for m in history_after(history, "unknown")] == ["m1", "m2"]
