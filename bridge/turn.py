"""One step of a thread's work: a command, a lifecycle event, recorded messages or an agent turn.

The lease holder calls `TurnRunner.run` with the thread's whole inbox; it handles the longest
prefix that belongs together (all plain user messages at once: coalescing), then commits that
prefix with a fenced script so a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from bridge import commands, lifecycle, permissions
from bridge.chat import AgentTurn, Sleep, TurnFailed, retrying, user_message
from bridge.codec import decode_message
from bridge.config import Settings
from bridge.deadletters import DeadLetters, turn_id
from bridge.engage.client import EngageClient
from bridge.engage.errors import EngageError, NotFound
from bridge.errors import PlatformError
from bridge.metrics import Metrics
from bridge.models import InboundMessage, ThreadKey
from bridge.outbound import Outbound
from bridge.policy import is_staff
from bridge.reconcile import history_after, reconcile
from bridge.refusals import refuse
from bridge.store import LeaseLost, Store
from bridge.threadmap import ThreadMap, ThreadRecord

__all__ = ["APOLOGY", "RECOVERED", "LeaseLost", "Step", "TurnRunner", "plan"]

APOLOGY = (
    "Sorry, I could not answer just now. The team has been told; "
    "please try again in a little while."
)

RECOVERED = (
    "The earlier conversation is no longer available, so this thread continues in a new one."
)

log = logging.getLogger(__name__)

# Long enough for a platform's Retry-After or two; a poison batch's apology is a courtesy.
_PARKED_APOLOGY_SECONDS = 30.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # "answer" | "record" | "command" | "staff" | "reopen"
    messages: tuple[InboundMessage, ...]
    command: commands.Command | None = None


def plan(messages: Sequence[InboundMessage], status: str | None, settings: Settings) -> Step:
    """The next step for the head of the inbox, given the thread's lifecycle status (pure)."""
    staff = settings.file.staff

    def plain(m: InboundMessage) -> bool:
        return commands.parse(m) is None and not is_staff(m, staff)

    head = messages[0]
    command = commands.parse(head)
    if command is not None:
        return Step("command", (head,), command)
    if is_staff(head, staff):
        return Step("staff", (head,))
    if status == lifecycle.RESOLVED:
        return Step("reopen", ())
    run: list[InboundMessage] = []
    for message in messages:
        if not plain(message):
            break
        run.append(message)
    return Step("record" if status == lifecycle.HUMAN else "answer", tuple(run))


@dataclass
class TurnRunner:
    settings: Settings
    store: Store
    threads: ThreadMap
    engage: EngageClient
    outbound: Outbound
    dead_letters: DeadLetters
    metrics: Metrics
    sleep: Sleep = asyncio.sleep

    async def run(self, thread: ThreadKey, raw_inbox: Sequence[bytes | str], token: str) -> None:
        started = time.monotonic()
        messages = [decode_message(raw) for raw in raw_inbox]
        record = await self.threads.get(thread)
        journal = await self._journal(thread)
        ids = [m.message_id for m in messages]
        if journal and ids[: len(journal)] == journal:
            # A crashed attempt's batch goes first and unchanged, so it is reconciled as such.
            messages = messages[: len(journal)]
        step = plan(messages, record.status if record else None, self.settings)
        if step.kind == "reopen" and record is not None:
            await self._reopen(thread, record, messages[0])
            await self._commit(thread, token, 0, record.last_message_id, "")
            return
        attempt = await self._count_attempt(thread, step.messages[0])
        if attempt > self.settings.turn_max_attempts:
            tid = await self._dead_letter_poison(thread, step.messages, attempt - 1)
            await self._commit(thread, token, len(step.messages), step.messages[-1].message_id, "")
            await self._apologise_once_parked(thread, tid)
            return
        if attempt == 1:
            log.info("turn started", extra={"thread_key": str(thread)})
        else:
            self.metrics.turns_restarted.labels(thread.platform).inc()
            log.warning(
                "turn attempt %d of %d (earlier ones did not finish)",
                attempt,
                self.settings.turn_max_attempts,
                extra={"thread_key": str(thread)},
            )
        agent = AgentTurn(self.engage, self.outbound, self.settings, self.metrics, self.sleep)
        mark = ""
        try:
            mark = await self._execute_recovering(thread, step, record, token, bool(journal), agent)
        except TurnFailed as exc:
            await self._give_up(thread, step.messages, str(exc))
        except PlatformError as exc:
            await self._give_up(thread, step.messages, f"{type(exc).__name__}: {exc}")
        await self._commit(thread, token, len(step.messages), step.messages[-1].message_id, mark)
        elapsed = time.monotonic() - started
        log.info(
            "turn of %d message(s) finished in %.2f s (attempt %d)",
            len(step.messages),
            elapsed,
            attempt,
            extra={"thread_key": str(thread)},
        )
        self.metrics.turn_seconds.labels(thread.platform).observe(elapsed)
        if step.kind == "answer":
            self.metrics.agent_seconds.observe(agent.agent_seconds)
            self.metrics.overhead_seconds.observe(max(0.0, elapsed - agent.agent_seconds))

    async def _execute_recovering(
        self,
        thread: ThreadKey,
        step: Step,
        record: ThreadRecord | None,
        token: str,
        retried: bool,
        agent: AgentTurn,
    ) -> str:
        """`_execute`, moved once to a new conversation if the mapped one is gone upstream
        (deleted, expired, an emulator restart): the thread keeps working, no dead letter."""
        try:
            return await self._execute(thread, step, record, token, retried, agent)
        except TurnFailed as exc:
            if record is None or not await self._conversation_gone(exc, record.conversation_id):
                raise
        head = step.messages[0] if step.messages else None
        if head is None:
            raise TurnFailed("conversation gone and no message to start a new one", permanent=True)
        record = await self._retrying(
            "replacing a conversation that is gone",
            lambda: self.threads.renew(self.engage, record, head, agent=record.agent, reset=False),
        )
        await self.outbound.notice(thread, f"recovered:{record.conversation_id}", RECOVERED)
        return await self._execute(thread, step, record, token, retried, agent)

    async def _conversation_gone(self, exc: TurnFailed, conversation_id: str) -> bool:
        """A 404 can also mean an unknown agent: only a conversation that reads 404 is gone."""
        if not isinstance(exc.__cause__, NotFound):
            return False
        try:
            await self.engage.get_conversation(conversation_id)
        except NotFound:
            return True
        except EngageError:
            return False
        return False

    async def _execute(
        self,
        thread: ThreadKey,
        step: Step,
        record: ThreadRecord | None,
        token: str,
        retried: bool,
        agent: AgentTurn,
    ) -> str:
        if step.kind == "command" and step.command is not None:
            await self._command(thread, step.messages[0], step.command, record)
            return ""
        if step.kind == "staff":
            return await self._staff(thread, step.messages[0], record, token, retried)
        if step.kind == "record":
            assert record is not None
            return await self._record(thread, record, step.messages, token, retried)
        return await self._answer(thread, step.messages, record, token, retried, agent)

    async def _answer(
        self,
        thread: ThreadKey,
        batch: Sequence[InboundMessage],
        record: ThreadRecord | None,
        token: str,
        retried: bool,
        agent: AgentTurn,
    ) -> str:
        routed = self.settings.file.routing.agent_for(thread.workspace, thread.channel)
        started = time.monotonic()
        ensured, _ = await self._retrying(
            "creating the conversation", lambda: self.threads.ensure(self.engage, batch[0], routed)
        )
        agent.agent_seconds += time.monotonic() - started  # Engage time, not bridge overhead
        tid = turn_id(str(thread), [m.message_id for m in batch])

        async def journal(attempt: int) -> None:
            await self._write_journal(thread, tid, batch, attempt)

        return await agent.answer(
            thread,
            ensured.conversation_id,
            ensured.agent or routed,
            batch,
            ensured.history_mark,
            reconcile_first=retried,
            on_attempt=journal,
        )

    async def _record(
        self,
        thread: ThreadKey,
        record: ThreadRecord,
        batch: Sequence[InboundMessage],
        token: str,
        retried: bool,
        name: str | None = None,
    ) -> str:
        """Add messages to the history without a reply (the thread is with a human)."""
        if not self.settings.file.policy.record_human_messages:
            return ""
        sent = [user_message(m, name) for m in batch]
        tid = turn_id(str(thread), [m.message_id for m in batch])
        cid = record.conversation_id
        # A failed add may have been stored anyway: every retry checks the history first.
        check_history = [retried]

        async def add() -> str:
            if check_history[0]:
                history = await self.engage.get_messages(cid)
                if reconcile(history_after(history, record.history_mark), sent).saved:
                    return ""
            await self._write_journal(thread, tid, batch, 1)
            check_history[0] = True
            stored = await self.engage.add_messages(cid, sent)
            return stored[-1].id if stored else ""

        return await self._retrying("recording messages", add)

    async def _staff(
        self,
        thread: ThreadKey,
        message: InboundMessage,
        record: ThreadRecord | None,
        token: str,
        retried: bool,
    ) -> str:
        if record is None:
            log.info(
                "staff message in a thread without conversation", extra={"thread_key": str(thread)}
            )
            return ""
        record = await self._transition(
            thread, record, lifecycle.Event.STAFF_MESSAGE, message, actor=message.user_id
        )
        return await self._record(
            thread, record, [message], token, retried, f"staff:{message.user_id}"
        )

    async def _reopen(
        self, thread: ThreadKey, record: ThreadRecord, message: InboundMessage
    ) -> None:
        await self._transition(thread, record, lifecycle.Event.USER_MESSAGE, message)

    async def _transition(
        self,
        thread: ThreadKey,
        record: ThreadRecord,
        event: lifecycle.Event,
        message: InboundMessage,
        actor: str | None = None,
    ) -> ThreadRecord:
        change = lifecycle.transition(
            record.status, event, actor=actor, reopen_to=self.settings.file.policy.reopen_to
        )
        if change is None:
            return record

        async def notice(body: str) -> None:
            await self.outbound.notice(thread, f"lifecycle:{message.message_id}", body)

        await self._retrying(
            "updating the conversation",
            lambda: lifecycle.apply_transition(self.engage, record.conversation_id, change, notice),
        )
        log.info(
            "thread %s -> %s (%s)",
            change.old,
            change.new,
            event.value,
            extra={"thread_key": str(thread), "conversation_id": record.conversation_id},
        )
        updated = await self.threads.update(
            record, status=change.new, assignee=change.assignee or ""
        )
        await self.outbound.mirror_status(thread, change.new, message.message_id)
        return updated

    async def _command(
        self,
        thread: ThreadKey,
        message: InboundMessage,
        command: commands.Command,
        record: ThreadRecord | None,
    ) -> None:
        verdict = permissions.decide_for(
            message,
            command.name,
            self.settings.file.staff,
            status=record.status if record else None,
            starter=record.starter if record else "",
        )
        if not verdict.allowed:
            await refuse(self.outbound.adapter_or_none(thread), message, command.name, verdict)
            return
        key = f"command:{message.message_id}"
        routed = self.settings.file.routing.agent_for(thread.workspace, thread.channel)
        if command.name == "reset":
            # A new conversation, not a forgotten thread: the bot stays in it (no mention needed).
            await self._retrying(
                "starting a new conversation",
                lambda: self._fresh_conversation(message, record, routed),
            )
            await self.outbound.notice(thread, key, "Starting a new conversation.")
        elif command.name == "agent":
            name = command.argument or ""
            if not await self.engage.validate_agent(name):
                await self.outbound.notice(thread, key, f"There is no agent called {name}.")
                return
            if record is not None:
                await self.threads.update(record, agent=name)
            else:
                record, _ = await self.threads.ensure(self.engage, message, name)
            await self.outbound.notice(thread, key, f"This thread is now answered by {name}.")
        elif command.name == "status":
            if record is None:
                body = f"No conversation yet; the agent would be {routed}."
            else:
                body = (
                    f"Conversation {record.conversation_id}, agent {record.agent or routed}, "
                    f"status {record.status}."
                )
            await self.outbound.notice(thread, key, body)
        else:
            if record is None:
                await self.outbound.notice(thread, key, "There is no conversation here yet.")
                return
            event = lifecycle.Event(command.name)
            # A customer asking for a person is not the person who takes the thread over.
            staff = is_staff(message, self.settings.file.staff)
            actor = message.user_id if staff else None
            changed = await self._transition(thread, record, event, message, actor=actor)
            if changed is record:
                await self.outbound.notice(thread, key, f"This thread is already {record.status}.")

    async def _fresh_conversation(
        self, message: InboundMessage, record: ThreadRecord | None, agent: str
    ) -> ThreadRecord:
        if record is None:
            ensured, _ = await self.threads.ensure(self.engage, message, agent)
            return ensured
        return await self.threads.renew(self.engage, record, message, agent=agent, reset=True)

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(what, call, self.settings, self.metrics, self.sleep)

    async def _give_up(
        self, thread: ThreadKey, batch: Sequence[InboundMessage], error: str
    ) -> None:
        tid = turn_id(str(thread), [m.message_id for m in batch])
        try:
            await self.outbound.notice(thread, f"apology:{tid}", APOLOGY)
        except PlatformError as exc:
            log.error("apology not posted: %s", exc, extra={"thread_key": str(thread)})
        await self._park(thread, tid, batch, error)

    async def _park(
        self, thread: ThreadKey, tid: str, batch: Sequence[InboundMessage], error: str
    ) -> None:
        if await self.dead_letters.store(tid, str(thread), tuple(batch), error):
            self.metrics.dead_letters.labels(thread.platform).inc()

    async def _count_attempt(self, thread: ThreadKey, head: InboundMessage) -> int:
        return await self.store.threads.count_attempt(thread, head.message_id)

    async def _dead_letter_poison(
        self, thread: ThreadKey, batch: Sequence[InboundMessage], attempts: int
    ) -> str:
        """Park a batch that crashed or outlived its worker `attempts` times; return its turn id."""
        tid = turn_id(str(thread), [m.message_id for m in batch])
        error = f"poison: {attempts} attempts did not finish"
        log.error(
            "poison batch: %d turn attempts did not finish; %d message(s) dead-lettered",
            attempts,
            len(batch),
            extra={"thread_key": str(thread), "turn_id": tid},
        )
        await self._park(thread, tid, batch, error)
        return tid

    async def _apologise_once_parked(self, thread: ThreadKey, tid: str) -> None:
        """Best effort and bounded, after the commit: the crash may well be in posting to this
        thread, or the platform may refuse every post for a while; neither may bring back a
        batch that is already parked."""
        try:
            async with asyncio.timeout(_PARKED_APOLOGY_SECONDS):
                await self.outbound.notice(thread, f"apology:{tid}", APOLOGY)
        except Exception as exc:
            log.error(
                "apology not posted: %s", type(exc).__name__, extra={"thread_key": str(thread)}
            )

    async def _journal(self, thread: ThreadKey) -> list[str]:
        """Message ids of the batch an unfinished attempt was working on (empty if none)."""
        return await self.store.threads.journal(thread)

    async def _write_journal(
        self, thread: ThreadKey, tid: str, batch: Sequence[InboundMessage], attempt: int
    ) -> None:
        ids = [m.message_id for m in batch]
        await self.store.threads.write_journal(thread, tid, ids, attempt)

    async def _commit(
        self, thread: ThreadKey, token: str, count: int, last_message_id: str, mark: str
    ) -> None:
        await self.store.threads.commit(
            thread,
            token,
            count=count,
            last_message_id=last_message_id,
            mark=mark,
            now=_now(),
            record_ttl=self.settings.thread_idle_ttl_seconds,
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()
