"""Which stored messages answer a batch: its user messages, then the one run that answers them.

An agent call whose outcome was lost may still be running on the server, and asking again starts
a second run on the same messages. Both answers end up in the history; only one may reach the
thread. The rule: a run whose answer was already posted wins, otherwise the earliest run (by its
creation) that has answered. Runs created before the batch was stored answer an earlier batch and
never count, even when their answer lands after it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.engage.models import MessageRead, RunRead, UserMessage


def history_after(history: Sequence[MessageRead], mark: str) -> list[MessageRead]:
    """The messages after `mark` (the last message a completed turn saw); all if unknown."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].id == mark:
            return list(history[index + 1 :])
    return list(history)


@dataclass(frozen=True, slots=True)
class RunAnswer:
    run_id: str
    messages: tuple[
        MessageRead, ...
    ]  # the run's agent messages after the batch (none yet: working)


@dataclass(frozen=True, slots=True)
class Reconciled:
    saved: bool
    # The runs answering the batch, earliest first; a run without messages may still be working.
    runs: tuple[RunAnswer, ...] = ()

    @property
    def answered(self) -> tuple[RunAnswer, ...]:
        return tuple(run for run in self.runs if run.messages)

    @property
    def answers(self) -> tuple[MessageRead, ...]:
        """The earliest run's answer (empty while no run has answered)."""
        answered = self.answered
        return answered[0].messages if answered else ()

    @property
    def awaiting_run(self) -> bool:
        """Stored, unanswered, and a run was started on it: its answer may still come."""
        return self.saved and not self.answers and bool(self.runs)

    def chosen(self, posted: Collection[str]) -> tuple[MessageRead, ...]:
        """The answer to post: one already (partly) posted wins, else the earliest run's."""
        for run in self.answered:
            if any(m.id in posted for m in run.messages):
                return run.messages
        return self.answers


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def reconcile(
    tail: Sequence[MessageRead], sent: Sequence[UserMessage], runs: Sequence[RunRead] = ()
) -> Reconciled:
    """Were `sent` already stored by an earlier attempt, and which run answered them?

    `runs` is the conversation's run list read *after* `tail` (so every run with a message in
    `tail` is in it). Agent messages of runs missing from it are taken in history order, after
    the listed runs: without a run list this is "the first run to answer wins".
    """
    contents = [m.content for m in sent]
    users = [(i, m) for i, m in enumerate(tail) if m.role == "user"]
    for start in range(len(users) - len(contents), -1, -1):
        window = users[start : start + len(contents)]
        if [m.content for _, m in window] != contents:
            continue
        after = window[-1][0] + 1 if window else 0
        by_run: dict[str, list[MessageRead]] = {}
        for message in tail[after:]:
            if message.is_agent:
                by_run.setdefault(message.run_id, []).append(message)
        stored = [m for _, m in window]
        order = [run.id for run in answering_runs(stored, runs)]
        listed = {run.id for run in runs}
        order += [run_id for run_id in by_run if run_id not in listed]
        return Reconciled(
            saved=True,
            runs=tuple(RunAnswer(run_id, tuple(by_run.get(run_id, ()))) for run_id in order),
        )
    return Reconciled(saved=False)


def answering_runs(stored: Sequence[MessageRead], runs: Sequence[RunRead]) -> list[RunRead]:
    """The runs that work on the stored batch, earliest first: the run that stored it (a chat
    call's inputs carry its run id) and every run started once the batch was stored."""
    if not stored:
        return []
    own = {m.run_id for m in stored}
    stored_at = _utc(stored[-1].created)
    mine = [r for r in runs if r.id in own or _utc(r.created) >= stored_at]
    return sorted(mine, key=lambda r: _utc(r.created))
