"""Feedback on a posted answer (buttons, reactions), written once to the run that produced it.

Adapters remember which run produced each posted answer (`Answers.remember`) and turn a click or
a reaction into a `Vote`; `FeedbackRecorder.record` writes it with the Runs API
(`POST /v1/runs/{run_id}/feedback`, an upsert: a changed mind replaces the earlier thumbs).

The Runs API keeps one feedback record per run and API user, and the bridge has one API key: the
platform user who voted is written into `description`, and the last vote on a run wins.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from bridge.engage.models import FeedbackRead, FeedbackUpsert
from bridge.errors import StorageUnavailable
from bridge.store import RedisClient
from bridge.store.feedback import FeedbackStore

log = logging.getLogger(__name__)


class Thumbs(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    CLEARED = ""


@dataclass(frozen=True, slots=True)
class AnswerRef:
    """Where an answer was posted: the platform's own message id in its channel."""

    platform: str
    workspace: str
    channel: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Vote:
    """One person's feedback action. `delivery_id` is the same for a redelivery of the action
    and new for every new action (Slack: the click's `action_ts`; a reaction's `event_ts`).
    `thumbs=None` leaves the stored thumbs as they are (a comment alone)."""

    run_id: str
    platform: str
    user_id: str
    delivery_id: str
    thumbs: Thumbs | None = None
    comment: str | None = None

    @property
    def voter(self) -> str:
        return f"{self.platform}:{self.user_id}"


class FeedbackApi(Protocol):
    """The one Runs API call used (bridge.engage.client.EngageClient fits)."""

    async def upsert_run_feedback(self, run_id: str, feedback: FeedbackUpsert) -> FeedbackRead: ...


@dataclass(frozen=True, slots=True)
class AnsweredRun:
    """The run behind a posted answer, and the thread it was posted in (for the platform's own
    thread id, where an ephemeral acknowledgement goes)."""

    run_id: str
    thread: str


class Answers:
    """Which run produced which posted answer; needs only Redis, so any process that posts can
    remember, including worker-only ones."""

    def __init__(self, redis: RedisClient) -> None:
        self._store = FeedbackStore(redis)

    async def remember(self, answer: AnswerRef, run_id: str, thread: str = "") -> None:
        await self._store.remember_answer(_where(answer), run_id, thread)

    async def run_of(self, answer: AnswerRef) -> AnsweredRun | None:
        """The run behind a posted message, or None when it is not a (remembered) answer."""
        found = await self._store.answer(_where(answer))
        return None if found is None else AnsweredRun(*found)


class FeedbackRecorder:
    """Writes votes at most once per delivery."""

    def __init__(self, engage: FeedbackApi, redis: RedisClient) -> None:
        self._engage = engage
        self._store = FeedbackStore(redis)

    async def record(self, vote: Vote) -> bool:
        """Write `vote`; False when this delivery was written before (nothing is sent again).

        Raises `EngageError` (the claim is released, so the platform's or the person's retry
        writes it) or `StorageUnavailable`.
        """
        if not await self._store.claim_delivery(vote.platform, vote.delivery_id):
            log.info("feedback delivery seen before", extra={"run_id": vote.run_id})
            return False
        upsert = FeedbackUpsert(
            thumbs=None if vote.thumbs is None else vote.thumbs.value,
            comment=vote.comment,
            description=f"by {vote.voter}",
        )
        try:
            await self._engage.upsert_run_feedback(vote.run_id, upsert)
        except BaseException:
            await self._release(vote)
            raise
        if vote.thumbs is not None:
            await self._note_vote(vote)
        log.info(
            "feedback written",
            extra={"run_id": vote.run_id, "thumbs": vote.thumbs, "platform": vote.platform},
        )
        return True

    async def withdraw(self, vote: Vote) -> bool:
        """A removed reaction: clear the thumbs only if they are still this voter's `vote`."""
        last = await self._store.last_vote(vote.run_id, vote.voter)
        if last is None or vote.thumbs is None or last != vote.thumbs.value:
            return False
        cleared = Vote(vote.run_id, vote.platform, vote.user_id, vote.delivery_id, Thumbs.CLEARED)
        return await self.record(cleared)

    async def _note_vote(self, vote: Vote) -> None:
        assert vote.thumbs is not None
        try:
            await self._store.note_vote(vote.run_id, vote.voter, vote.thumbs.value)
        except StorageUnavailable:
            # Written already; only a later reaction removal would miss it.
            log.warning("feedback vote not noted", extra={"run_id": vote.run_id})

    async def _release(self, vote: Vote) -> None:
        try:
            await self._store.release_delivery(vote.platform, vote.delivery_id)
        except StorageUnavailable:
            log.warning("feedback claim not released; it expires on its own")


def _where(answer: AnswerRef) -> tuple[str, str, str, str]:
    return answer.platform, answer.workspace, answer.channel, answer.message_id
