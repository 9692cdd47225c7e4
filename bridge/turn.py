"""One step of a thread's work: a command, a lifecycle event, recorded messages or an agent turn.

The lease holder calls `TurnRunner.run` with the thread's whole inbox; it handles the longest
prefix that belongs together (all plain user messages at once: coalescing), then commits that
prefix with a fenced script so a worker that lost its lease changes nothing. The turn's ledger
(`bridge/ledger.py`) keeps its bookkeeping, its actions (`bridge/actions.py`) do the work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bridge import commands, lifecycle
from bridge.actions import RECOVERED, Services, TurnActions
from bridge.chat import AgentTurn, TurnFailed
from bridge.codec import decode_message
from bridge.config import Staff
from bridge.deadletters import DeadLetters
from bridge.edits import NOTE_COMMAND
from bridge.errors import PlatformError
from bridge.ledger import TurnLedger
from bridge.models import InboundMessage, ThreadKey
from bridge.policy import is_staff
from bridge.store import Hold, LeaseLost, Store
from bridge.store.threads import Begun, CreateClaim
from bridge.threadmap import ThreadRecord

__all__ = ["APOLOGY", "RECOVERED", "LeaseLost", "Step", "TurnRunner", "plan"]

APOLOGY = (
    "Sorry, I could not answer just now. The team has been told; "
    "please try again in a little while."
)

log = logging.getLogger(__name__)

# Long enough for a platform's Retry-After or two; a poison batch's apology is a courtesy.
_PARKED_APOLOGY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # "answer" | "record" | "command" | "staff" | "reopen" | "note"
    messages: tuple[InboundMessage, ...]
    command: commands.Command | None = None


def plan(messages: Sequence[InboundMessage], status: str | None, staff: Staff) -> Step:
    """The next step for the head of the inbox, given the thread's lifecycle status (pure)."""

    def plain(m: InboundMessage) -> bool:
        return commands.parse(m) is None and not is_staff(m, staff) and m.command != NOTE_COMMAND

    head = messages[0]
    if head.command == NOTE_COMMAND:
        return Step("note", (head,))  # bridge.edits: recorded in the history, never answered
    command = commands.parse(head)
    if command is not None:
        return Step("command", (head,), command)
    if is_staff(head, staff):
        return Step("staff", (head,))
    if status == lifecycle.RESOLVED:
        return Step("reopen", ())
    run = [head]  # plain: none of the above
    for message in messages[1:]:
        if not plain(message):
            break
        run.append(message)
    return Step("record" if status == lifecycle.HUMAN else "answer", tuple(run))


@dataclass
class TurnRunner:
    services: Services
    store: Store
    dead_letters: DeadLetters

    async def run(self, hold: Hold, begun: Begun) -> bool:
        """One step from what `begin` read (lease, inbox, record, journal, attempt count, all in
        one round trip); True if more is pending and the lease is still ours."""
        s, thread = self.services, hold.thread
        started = time.monotonic()
        ledger = TurnLedger(
            self.store,
            self.dead_letters,
            s.metrics,
            hold,
            s.settings.thread_idle_ttl_seconds,
            CreateClaim(begun.claim, begun.facts),
        )
        messages = [decode_message(raw, thread) for raw in begun.pending]
        record = ThreadRecord.from_hash(begun.record)
        journal = begun.journal
        ids = [m.message_id for m in messages]
        if journal and ids[: len(journal)] == journal:
            # A crashed attempt's batch goes first and unchanged, so it is reconciled as such.
            messages = messages[: len(journal)]
        step = plan(messages, record.status if record else None, s.settings.file.staff)
        agent = AgentTurn(s.engage, s.outbound, s.settings, s.metrics, s.sleep)
        actions = TurnActions(s, thread, ledger, bool(journal), agent)
        if step.kind == "reopen" and record is not None:
            await actions.reopen(record, messages[0])
            return await ledger.commit(0, record.last_message_id)
        # Counted by `begin` on the inbox's head, which is always this step's first message.
        attempt = begun.attempt
        if attempt > s.settings.turn_max_attempts:
            return await self._park_poison(ledger, step.messages, attempt - 1)
        if attempt > 1 and await ledger.parked(step.messages):
            # An earlier attempt gave this batch up and died before its commit: finish that
            # (the apology is idempotent), never answer a batch that is already a dead letter.
            await self._apologise(ledger, ledger.turn_id(step.messages))
            return await ledger.commit(len(step.messages), step.messages[-1].message_id)
        self._log_start(thread, attempt)
        mark = ""
        try:
            mark = await actions.execute(step.kind, step.messages, record, step.command)
        except TurnFailed as exc:
            await self._give_up(ledger, step.messages, str(exc))
        except PlatformError as exc:
            await self._give_up(ledger, step.messages, f"{type(exc).__name__}: {exc}")
        more = await ledger.commit(len(step.messages), step.messages[-1].message_id, mark)
        elapsed = time.monotonic() - started
        log.info(
            "turn of %d message(s) finished in %.2f s (attempt %d)",
            len(step.messages),
            elapsed,
            attempt,
            extra={"thread_key": str(thread)},
        )
        s.metrics.turn_seconds.labels(thread.platform).observe(elapsed)
        if step.kind == "answer":
            s.metrics.agent_seconds.observe(agent.agent_seconds)
            s.metrics.overhead_seconds.observe(max(0.0, elapsed - agent.agent_seconds))
        return more

    def _log_start(self, thread: ThreadKey, attempt: int) -> None:
        if attempt == 1:
            log.info("turn started", extra={"thread_key": str(thread)})
            return
        self.services.metrics.turns_restarted.labels(thread.platform).inc()
        log.warning(
            "turn attempt %d of %d (earlier ones did not finish)",
            attempt,
            self.services.settings.turn_max_attempts,
            extra={"thread_key": str(thread)},
        )

    async def _give_up(
        self, ledger: TurnLedger, batch: Sequence[InboundMessage], error: str
    ) -> None:
        tid = await ledger.park(batch, error)
        try:
            await self.services.outbound.notice(ledger.thread, f"apology:{tid}", APOLOGY)
        except PlatformError as exc:
            log.error("apology not posted: %s", exc, extra={"thread_key": str(ledger.thread)})

    async def _park_poison(
        self, ledger: TurnLedger, batch: Sequence[InboundMessage], attempts: int
    ) -> bool:
        """Park a batch that crashed or outlived its worker `attempts` times, commit, then
        apologise best effort and bounded: the crash may well be in posting to this thread, or
        the platform may refuse every post for a while; neither may bring the batch back."""
        tid = await ledger.park(batch, f"poison: {attempts} attempts did not finish")
        log.error(
            "poison batch: %d turn attempts did not finish; %d message(s) dead-lettered",
            attempts,
            len(batch),
            extra={"thread_key": str(ledger.thread), "turn_id": tid},
        )
        more = await ledger.commit(len(batch), batch[-1].message_id)
        await self._apologise(ledger, tid)
        return more

    async def _apologise(self, ledger: TurnLedger, tid: str) -> None:
        """Best effort and bounded, after the commit of a parked batch."""
        try:
            async with asyncio.timeout(_PARKED_APOLOGY_SECONDS):
                await self.services.outbound.notice(ledger.thread, f"apology:{tid}", APOLOGY)
        except Exception as exc:
            log.error(
                "apology not posted: %s",
                type(exc).__name__,
                extra={"thread_key": str(ledger.thread)},
            )
