"""Who may run which thread command: one pure decision for every adapter and for the core.

| command   | staff | the thread's starter                     | anyone else |
|-----------|-------|------------------------------------------|-------------|
| `status`  | yes   | yes                                      | yes         |
| `handoff` | yes   | yes (asking for a person)                | no          |
| `reset`   | yes   | while the bot holds the thread           | no          |
| `resolve` | yes   | while the bot holds the thread           | no          |
| `agent`   | yes   | no (routing is the operator's choice)    | no          |
| `resume`  | yes   | no (giving a thread back is the staff's) | no          |

A thread without a conversation yet has nothing to protect: its caller counts as the starter.
A command naming another thread (a Slack link) acts only if the caller can see that thread's
channel (a member of a private channel or DM): staff included. The console is the operator's own
terminal, so its user counts as staff here (not for the participation policy).
Refusals change nothing; callers are told why privately and the refusal is logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.config import Staff
from bridge.models import InboundMessage
from bridge.policy import is_staff

BOT = "bot"
_ANYONE = frozenset({"status"})
_STARTER = frozenset({"handoff"})
_STARTER_WHILE_BOT = frozenset({"reset", "resolve"})
_LOCAL_OPERATOR_PLATFORMS = frozenset({"console"})
_DOING = {"agent": "switch the agent of", "resume": "give back to the bot", "handoff": "hand off"}


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    staff: bool


@dataclass(frozen=True, slots=True)
class Target:
    """What is known of the thread a command acts on.

    `status` is the lifecycle status (None: no conversation yet), `starter` the user who started
    it ("" when the record predates starters: then only a DM's user counts as the starter).
    `visible` is False when the command named the thread by link and the caller is not in its
    (private) channel.
    """

    status: str | None
    starter: str = ""
    is_dm: bool = False
    visible: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str


def decide(command: str, caller: Caller, target: Target) -> Verdict:
    """Whether `caller` may run `command` on `target`, and in words why (pure)."""
    if not target.visible:
        return Verdict(False, "You can only act on threads in channels you are a member of.")
    if caller.staff:
        return Verdict(True, "staff")
    if command in _ANYONE:
        return Verdict(True, "anyone in the thread may ask for its status")
    doing = _DOING.get(command, command)
    starter = target.status is None or (
        caller.user_id == target.starter if target.starter else target.is_dm
    )
    if command in _STARTER and starter:
        return Verdict(True, "the thread's starter may ask for a person")
    if command in _STARTER_WHILE_BOT and starter:
        if target.status in (None, BOT):
            return Verdict(True, "the thread's starter, while the bot holds it")
        return Verdict(False, f"Only staff can {doing} this thread while the team handles it.")
    if command in _STARTER | _STARTER_WHILE_BOT:
        return Verdict(False, f"Only staff or the person who started this thread can {doing} it.")
    return Verdict(False, f"Only staff can {doing} a thread.")


def caller_of(message: InboundMessage, staff: Staff) -> Caller:
    local_operator = message.platform in _LOCAL_OPERATOR_PLATFORMS
    return Caller(message.user_id, local_operator or is_staff(message, staff))


def decide_for(
    message: InboundMessage,
    command: str,
    staff: Staff,
    *,
    status: str | None,
    starter: str = "",
    visible: bool = True,
) -> Verdict:
    """`decide` for the sender of `message` on the thread `message` is aimed at."""
    target = Target(status=status, starter=starter, is_dm=message.is_dm, visible=visible)
    return decide(command, caller_of(message, staff), target)
