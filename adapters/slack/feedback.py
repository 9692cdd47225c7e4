"""Feedback listeners: 👍/👎 buttons, the comment modal and reactions, written to the run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import feedback_blocks as fb
from adapters.slack.apierrors import error_code
from adapters.slack.clients import Clients
from adapters.slack.oauth import workspace_of
from bridge.engage.errors import EngageError
from bridge.errors import StorageUnavailable
from bridge.feedback import AnswerRef, Answers, FeedbackApi, FeedbackRecorder, Thumbs, Vote
from bridge.threadmap import RedisClient

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]

# Slack wants an interaction acknowledged within 3 s; past this the person is told to retry.
WRITE_SECONDS = 2.0
THANKS = {Thumbs.UP: "Thanks for the :+1:", Thumbs.DOWN: "Thanks, noted :-1:", Thumbs.CLEARED: ""}
FAILED = "Sorry, your feedback could not be recorded just now; please try again."


@runtime_checkable
class HasEngage(Protocol):
    """The core's Bridge, handed to the adapter as its inbox, carries the Engage client."""

    @property
    def engage(self) -> FeedbackApi: ...


class SlackFeedback:
    """Registered on the Bolt app; writes through a recorder once the bridge is attached, and
    answers with the workspace's client (a token Slack refuses is told like a post's)."""

    def __init__(self, redis: RedisClient, answers: Answers, clients: Clients) -> None:
        self._redis = redis
        self._answers = answers
        self._clients = clients
        self._recorder: FeedbackRecorder | None = None

    def attach(self, inbox: object) -> None:
        if isinstance(inbox, HasEngage):
            self._recorder = FeedbackRecorder(inbox.engage, self._redis)

    def register(self, app: AsyncApp) -> None:
        app.action(fb.ACTION_UP)(self._on_thumbs)
        app.action(fb.ACTION_DOWN)(self._on_thumbs)
        app.action(fb.ACTION_COMMENT)(self._on_comment_button)
        app.view(fb.MODAL_CALLBACK)(self._on_comment)
        app.event("reaction_added")(self._on_reaction)
        app.event("reaction_removed")(self._on_reaction)

    async def _on_thumbs(self, body: dict[str, Any], ack: Ack) -> None:
        await ack()
        vote, place = fb.vote_from_action(body), fb.place_of_action(body)
        if vote is None:
            return
        ok = await self._write_bounded(vote)
        await self._tell(body, place, vote.user_id, THANKS[vote.thumbs or Thumbs.CLEARED], ok)

    async def _on_comment_button(self, body: dict[str, Any], ack: Ack) -> None:
        await ack()
        actions = body.get("actions") or [{}]
        run_id = str(actions[0].get("value") or "")
        if not run_id:
            return
        try:
            view = fb.comment_modal(run_id, fb.place_of_action(body))
            client = await self._client_for(body)
            await client.views_open(trigger_id=body.get("trigger_id"), view=view)
        except SlackApiError as exc:
            log.warning("feedback modal not opened: %s", error_code(exc))

    async def _on_comment(self, body: dict[str, Any], ack: Ack) -> None:
        found = fb.vote_from_view(body)
        if found is None:
            await ack()
            return
        vote, place = found
        ok = await self._write_bounded(vote)
        if not ok:
            errors = {fb.COMMENT_BLOCK: FAILED}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        await self._tell(body, place, vote.user_id, "Thanks for the comment.", ok)

    async def _on_reaction(self, body: dict[str, Any], ack: Ack) -> None:
        reaction = fb.reaction_of(body)
        if reaction is None or self._recorder is None:
            await ack()
            return
        where = AnswerRef(fb.PLATFORM, reaction.team, reaction.channel, reaction.message_ts)
        answered = await self._answers.run_of(where)
        if answered is None:
            await ack()
            return
        vote = Vote(answered.run_id, fb.PLATFORM, reaction.user, reaction.delivery, reaction.thumbs)
        # Raising (storage or Engage down) answers 500 and Slack redelivers the event.
        if reaction.added:
            written = await self._recorder.record(vote)
        else:
            written = await self._recorder.withdraw(vote)
        await ack()
        if written and reaction.added:
            place = fb.Place(reaction.channel, answered.thread)
            await self._tell(body, place, reaction.user, THANKS[reaction.thumbs], True)

    async def _write_bounded(self, vote: Vote) -> bool:
        """Record within Slack's deadline; False tells the person to try again."""
        if self._recorder is None:
            return False
        try:
            async with asyncio.timeout(WRITE_SECONDS):
                await self._recorder.record(vote)
        except (TimeoutError, EngageError, StorageUnavailable) as exc:
            log.warning("feedback not recorded: %s", type(exc).__name__)
            return False
        return True

    async def _tell(
        self, body: dict[str, Any], place: fb.Place | None, user: str, text: str, ok: bool
    ) -> None:
        if place is None or not (text or not ok):
            return
        try:
            client = await self._client_for(body)
            await client.chat_postEphemeral(
                channel=place.channel,
                user=user,
                text=text if ok else FAILED,
                thread_ts=place.thread or None,
            )
        except SlackApiError as exc:
            log.info("feedback acknowledgement not shown: %s", error_code(exc))

    async def _client_for(self, body: dict[str, Any]) -> AsyncWebClient:
        team = workspace_of(body)
        return await self._clients.for_team(team) if team else self._clients.base
