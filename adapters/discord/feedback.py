"""Feedback on Discord answers: 👍/👎 buttons and a comment modal under each answer, and 👍/👎
reactions, written once to the run that produced the answer (see bridge.feedback).

Clicks are handled from the raw interaction by custom id, not by a view kept in memory, so any
listener process (a restarted one too) handles the buttons of any earlier answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import discord

from adapters.discord.events import DM_WORKSPACE, PLATFORM
from bridge.engage.errors import EngageError
from bridge.errors import StorageUnavailable
from bridge.feedback import AnswerRef, Answers, FeedbackApi, FeedbackRecorder, Thumbs, Vote
from bridge.models import ThreadKey
from bridge.sanitise import clean
from bridge.threadmap import RedisClient

log = logging.getLogger(__name__)

PREFIX = "engage-fb:"
UP, DOWN, COMMENT = f"{PREFIX}up", f"{PREFIX}down", f"{PREFIX}comment"
COMMENT_MODAL = f"{PREFIX}modal:"  # + the answer's message id
COMMENT_FIELD = "comment"
COMMENT_MAX = 1000
_BUTTONS = {UP: Thumbs.UP, DOWN: Thumbs.DOWN}
_REACTIONS = {"👍": Thumbs.UP, "👎": Thumbs.DOWN}
_SKIN_TONES = "".join(chr(c) for c in range(0x1F3FB, 0x1F400))

THANKS = {
    Thumbs.UP: "Thanks for the 👍: noted for the agent's team.",
    Thumbs.DOWN: "Thanks, noted 👎. **Comment** tells the team what was wrong.",
}
COMMENT_SAVED = "Thanks, your comment was passed on."
NOT_AN_ANSWER = "Feedback is only taken on the agent's answers (and not on very old ones)."
NOT_SAVED = "Sorry, your feedback could not be saved just now; please try again."


def feedback_view() -> discord.ui.View:
    """The buttons under an answer. Stop the view once sent: clicks are handled by custom id."""
    view = discord.ui.View(timeout=None)
    gray = discord.ButtonStyle.secondary
    view.add_item(discord.ui.Button(emoji="👍", custom_id=UP, style=gray))
    view.add_item(discord.ui.Button(emoji="👎", custom_id=DOWN, style=gray))
    view.add_item(discord.ui.Button(label="Comment", custom_id=COMMENT, style=gray))
    return view


class CommentModal(discord.ui.Modal):
    def __init__(self, message_id: int) -> None:
        # Interaction tokens live 15 minutes; a modal nobody submits is forgotten after that.
        super().__init__(
            title="Feedback on this answer", custom_id=f"{COMMENT_MODAL}{message_id}", timeout=900
        )
        self.add_item(
            discord.ui.TextInput(
                label="What was good or wrong?",
                custom_id=COMMENT_FIELD,
                style=discord.TextStyle.long,
                max_length=COMMENT_MAX,
            )
        )


def reaction_thumbs(emoji: str | None) -> Thumbs | None:
    """👍/👎 in any skin tone; anything else is not feedback."""
    return None if emoji is None else _REACTIONS.get(emoji.rstrip(_SKIN_TONES))


def submitted_text(components: Any, custom_id: str) -> str | None:
    """The value of text input `custom_id` in a modal submission (rows or labels around it)."""
    for component in _walk(components):
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component["value"])
    return None


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, Mapping):
        yield node
        yield from _walk(node.get("components"))
        yield from _walk(node.get("component"))


def answer_ref(
    guild_id: int | str | None, channel_id: int | str, message_id: int | str
) -> AnswerRef:
    workspace = DM_WORKSPACE if guild_id is None else str(guild_id)
    return AnswerRef(PLATFORM, workspace, str(channel_id), str(message_id))


@dataclass(frozen=True, slots=True)
class Reaction:
    """A 👍/👎 added to or removed from a message. `delivery_id` is the gateway session and
    sequence: the same for a RESUME's replay of the event, new for every new event."""

    ref: AnswerRef
    user_id: str
    thumbs: Thumbs
    added: bool
    delivery_id: str


class Feedback:
    """Remembers answers as they are posted; turns clicks, comments and reactions into votes."""

    def __init__(self, redis: RedisClient, engage: Callable[[], FeedbackApi | None]) -> None:
        self._answers = Answers(redis)
        self._redis = redis
        self._engage = engage

    async def remember(self, thread: ThreadKey, message_id: str, run_id: str) -> None:
        """Best effort: the answer is posted already; only feedback on it would be lost."""
        ref = answer_ref(None if thread.workspace == DM_WORKSPACE else thread.workspace,
                         thread.thread, message_id)  # fmt: skip
        try:
            await self._answers.remember(ref, run_id, str(thread))
        except StorageUnavailable as exc:
            log.warning("discord: answer %s not remembered for feedback: %s", message_id, exc)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        data: Mapping[str, Any] = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(PREFIX) or interaction.channel_id is None:
            return
        if interaction.type is discord.InteractionType.component and interaction.message:
            message_id = interaction.message.id
            if custom_id == COMMENT:
                await interaction.response.send_modal(CommentModal(message_id))
            elif custom_id in _BUTTONS:
                await self._acknowledged(interaction, message_id, _BUTTONS[custom_id], None)
        elif interaction.type is discord.InteractionType.modal_submit:
            message_id = int(custom_id.removeprefix(COMMENT_MODAL) or 0)
            comment = clean(submitted_text(data.get("components"), COMMENT_FIELD) or "").strip()
            if message_id and comment:
                await self._acknowledged(interaction, message_id, None, comment[:COMMENT_MAX])

    async def on_reaction(self, reaction: Reaction) -> None:
        answered, engage = await self._answers.run_of(reaction.ref), self._engage()
        if answered is None or engage is None:
            return
        vote = Vote(answered.run_id, PLATFORM, reaction.user_id, reaction.delivery_id,
                    reaction.thumbs)  # fmt: skip
        recorder = FeedbackRecorder(engage, self._redis)
        if reaction.added:
            await recorder.record(vote)
        else:
            await recorder.withdraw(vote)

    async def _acknowledged(
        self,
        interaction: discord.Interaction,
        message_id: int,
        thumbs: Thumbs | None,
        comment: str | None,
    ) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            # 40060 already acknowledged / 10062 unknown: a redelivered or expired interaction.
            log.info("discord: feedback interaction %s not taken: %s", interaction.id, exc)
            return
        reply = await self._vote(interaction, message_id, thumbs, comment)
        await interaction.followup.send(
            reply, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    async def _vote(
        self,
        interaction: discord.Interaction,
        message_id: int,
        thumbs: Thumbs | None,
        comment: str | None,
    ) -> str:
        ref = answer_ref(interaction.guild_id, interaction.channel_id or 0, message_id)
        try:
            answered = await self._answers.run_of(ref)
            engage = self._engage()
            if answered is None:
                return NOT_AN_ANSWER
            if engage is None:
                return NOT_SAVED
            vote = Vote(answered.run_id, PLATFORM, str(interaction.user.id),
                        f"interaction-{interaction.id}", thumbs, comment)  # fmt: skip
            await FeedbackRecorder(engage, self._redis).record(vote)
        except (EngageError, StorageUnavailable) as exc:
            log.warning("discord: feedback on %s not saved: %s", message_id, exc)
            return NOT_SAVED
        return COMMENT_SAVED if thumbs is None else THANKS[thumbs]
