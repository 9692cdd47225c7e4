"""Participation policy: whether a message goes to the agent, is only recorded, or is ignored."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from bridge import commands
from bridge.config import Policy, Staff
from bridge.models import InboundMessage, Origin, Standing

log = logging.getLogger(__name__)


class Action(enum.StrEnum):
    ANSWER = "answer"
    RECORD_ONLY = "record_only"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


def is_staff(message: InboundMessage, staff: Staff) -> bool:
    """Adapters mark staff (roles, user groups need platform lookups); plain id lists help too."""
    if message.origin is Origin.STAFF:
        return True
    ids_by_platform = {"slack": staff.slack_user_ids, "desk": staff.desk_agent_ids}
    return message.user_id in ids_by_platform.get(message.platform, ())


@dataclass(frozen=True, slots=True)
class Decisions:
    """The decision for each standing the message may find its thread in, made before it is
    read: the store reads the standing and enqueues (or not) in one atomic step."""

    by_standing: tuple[Decision, Decision, Decision]  # in Standing order
    command: bool  # the message is a command (parsed once)

    def __getitem__(self, standing: Standing) -> Decision:
        return self.by_standing[standing - 1]

    def accepted(self) -> frozenset[Standing]:
        return frozenset(s for s in Standing if self[s].action is not Action.IGNORE)


def decide_each(message: InboundMessage, policy: Policy, staff: Staff) -> Decisions:
    """`decide` for every standing at once (pure; the message is parsed once)."""
    command, staff_ = commands.parse(message) is not None, is_staff(message, staff)
    unknown = _decide(message, False, None, policy, staff_, command)
    known = _decide(message, True, None, policy, staff_, command)
    human = _decide(message, True, "human", policy, staff_, command)
    return Decisions((unknown, known, human), command)


def decide(
    message: InboundMessage,
    known_thread: bool,
    record_status: str | None,
    policy: Policy,
    staff: Staff,
) -> Decision:
    staff_ = is_staff(message, staff)
    command = commands.parse(message) is not None
    decision = _decide(message, known_thread, record_status, policy, staff_, command)
    log.debug(
        "policy %s: %s",
        decision.action.value,
        decision.reason,
        extra={"thread_key": str(message.thread), "message_id": message.message_id},
    )
    return decision


def _decide(
    message: InboundMessage,
    known_thread: bool,
    record_status: str | None,
    policy: Policy,
    staff: bool,
    command: bool,
) -> Decision:
    answer, record, ignore = Action.ANSWER, Action.RECORD_ONLY, Action.IGNORE
    if message.origin is Origin.BOT and not policy.allow_bots:
        return Decision(ignore, "written by a bot")
    if staff:
        if known_thread:
            return Decision(record, "staff message in a known thread: hands it to a human")
        return Decision(ignore, "staff message outside a known thread")
    if command:
        return Decision(answer, "command addressed to the bot")
    if known_thread and record_status == "human":
        return Decision(record, "thread is owned by a human")
    if message.is_dm:
        return (
            Decision(answer, "direct message")
            if policy.answer_dms
            else Decision(ignore, "direct messages are switched off")
        )
    if message.mentions_bot:
        return (
            Decision(answer, "mentions the bot")
            if policy.answer_mentions
            else Decision(ignore, "mentions are switched off")
        )
    if known_thread:
        return Decision(answer, "reply in a known thread")
    channel = message.thread.channel
    if channel in policy.auto_reply_channels:
        return Decision(answer, "auto-reply channel")
    if channel in policy.forum_channels:
        return Decision(answer, "forum channel")
    return Decision(ignore, "not addressed to the bot")
