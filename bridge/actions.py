"""A turn's actions: answer, record for a human, commands and lifecycle, on one thread."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bridge import commands, lifecycle, permissions
from bridge.chat import AgentTurn, Sleep, TurnFailed, settling, user_message
from bridge.config import Settings
from bridge.engage.client import EngageClient
from bridge.engage.errors import EngageError, NotFound
from bridge.engage.models import InfoMessage
from bridge.ledger import TurnLedger
from bridge.metrics import Metrics
from bridge.models import InboundMessage, ThreadKey
from bridge.outbound import Outbound
from bridge.policy import is_staff
from bridge.reconcile import history_after, reconcile
from bridge.refusals import refuse
from bridge.threadmap import ThreadMap, ThreadRecord

RECOVERED = (
    "The earlier conversation is no longer available, so this thread continues in a new one."
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """What every turn's actions use; built once per process."""

    settings: Settings
    threads: ThreadMap
    engage: EngageClient
    outbound: Outbound
    metrics: Metrics
    sleep: Sleep = asyncio.sleep


@dataclass
class TurnActions:
    """The work of one step on one thread; `retried` means an earlier attempt may have reached
    Engage Smarter, so every write there is reconciled with the history first."""

    services: Services
    thread: ThreadKey
    ledger: TurnLedger
    retried: bool
    agent: AgentTurn

    async def execute(
        self,
        kind: str,
        batch: Sequence[InboundMessage],
        record: ThreadRecord | None,
        command: commands.Command | None = None,
    ) -> str:
        """The step, moved once to a new conversation if the mapped one is gone upstream
        (deleted, expired, an emulator restart): the thread keeps working, no dead letter.
        Returns the history mark to commit."""
        try:
            return await self._dispatch(kind, batch, record, command)
        except TurnFailed as exc:
            if record is None or not await self._conversation_gone(exc, record.conversation_id):
                raise
        s, old = self.services, record
        record = await self._settling(
            "replacing a conversation that is gone",
            lambda: s.threads.renew(s.engage, old, batch[0], agent=old.agent, reset=False),
        )
        await s.outbound.notice(self.thread, f"recovered:{record.conversation_id}", RECOVERED)
        return await self._dispatch(kind, batch, record, command)

    async def reopen(self, record: ThreadRecord, message: InboundMessage) -> None:
        await self._transition(record, lifecycle.Event.USER_MESSAGE, message)

    async def _dispatch(
        self,
        kind: str,
        batch: Sequence[InboundMessage],
        record: ThreadRecord | None,
        command: commands.Command | None,
    ) -> str:
        if kind == "command" and command is not None:
            await self._command(batch[0], command, record)
            return ""
        if kind == "staff":
            return await self._staff(batch[0], record)
        if kind == "record":
            assert record is not None
            return await self._record(record, batch)
        if kind == "note":
            # No conversation yet: nothing to note it in.
            return "" if record is None else await self._note(record, batch[0])
        return await self._answer(batch, record)

    async def _conversation_gone(self, exc: TurnFailed, conversation_id: str) -> bool:
        """A 404 can also mean an unknown agent: only a conversation that reads 404 is gone."""
        if not isinstance(exc.__cause__, NotFound):
            return False
        try:
            await self.services.engage.get_conversation(conversation_id)
        except NotFound:
            return True
        except EngageError:
            return False
        return False

    async def _answer(self, batch: Sequence[InboundMessage], record: ThreadRecord | None) -> str:
        s, thread = self.services, self.thread
        routed = s.settings.file.routing.agent_for(thread.workspace, thread.channel)
        started = time.monotonic()
        if record is None and batch[0].agent not in (None, routed):
            routed = await self._first_agent(batch[0], routed)
        ensured = await self._settling(
            "creating the conversation",
            lambda: s.threads.ensure_started(
                s.engage, batch[0], routed, read=record, claim=self.ledger.claim
            ),
        )
        self.agent.agent_seconds += time.monotonic() - started  # Engage time, not overhead
        got, writing = ensured.record, ensured.writing
        try:
            # A new record is written while the agent works: the chat does not wait a Redis
            # round trip for it (10-20 ms p50 at 200/50 on 2 shared cores); the commit does.
            mark = await self.agent.answer(
                thread,
                got.conversation_id,
                got.agent or routed,
                batch,
                got.history_mark,
                reconcile_first=self.retried,
            )
        except BaseException:
            if writing is not None:
                await self._written_anyway(writing)
            raise
        if writing is not None:
            await writing
        return mark

    async def _written_anyway(self, writing: asyncio.Task[ThreadRecord]) -> None:
        """The record's write, awaited after the turn failed: the turn's own error is the one
        that counts (a failed write leaves the create-claim, so the next turn searches first)."""
        try:
            await writing
        except Exception as exc:
            log.error(
                "thread record not written: %s",
                type(exc).__name__,
                extra={"thread_key": str(self.thread)},
            )

    async def _first_agent(self, first: InboundMessage, routed: str) -> str:
        """The agent a new thread's first message asks for, if the platform knows it."""
        s, chosen = self.services, first.agent or routed
        if await s.engage.validate_agent(chosen):
            return chosen
        body = f"There is no agent called {chosen}; {routed} answers instead."
        await s.outbound.notice(self.thread, f"agent:{first.message_id}", body)
        return routed

    async def _record(
        self, record: ThreadRecord, batch: Sequence[InboundMessage], name: str | None = None
    ) -> str:
        """Add messages to the history without a reply (the thread is with a human)."""
        s = self.services
        if not s.settings.file.policy.record_human_messages:
            return ""
        sent = [user_message(m, name) for m in batch]
        cid = record.conversation_id
        # A failed add may have been stored anyway: every retry checks the history first.
        check_history = [self.retried]

        async def add() -> str:
            if check_history[0]:
                history = await s.engage.get_messages(cid)
                if reconcile(history_after(history, record.history_mark), sent).saved:
                    return ""
            check_history[0] = True
            stored = await s.engage.add_messages(cid, sent)
            return stored[-1].id if stored else ""

        return await self._settling("recording messages", add)

    async def _note(self, record: ThreadRecord, note: InboundMessage) -> str:
        """A history note (bridge.edits) as an info message: kept with the conversation, never
        answered, and not a user message the agent would answer with the next ones."""
        engage, cid = self.services.engage, record.conversation_id

        async def add() -> str:
            history = history_after(await engage.get_messages(cid), record.history_mark)
            if any(m.role == "info" and m.content == note.text for m in history):
                return ""  # an earlier attempt stored it
            stored = await engage.add_messages(cid, [InfoMessage(content=note.text)])
            return stored[-1].id if stored else ""

        return await self._settling("noting in the history", add)

    async def _staff(self, message: InboundMessage, record: ThreadRecord | None) -> str:
        if record is None:
            log.info(
                "staff message in a thread without conversation",
                extra={"thread_key": str(self.thread)},
            )
            return ""
        record = await self._transition(
            record, lifecycle.Event.STAFF_MESSAGE, message, actor=message.user_id
        )
        return await self._record(record, [message], f"staff:{message.user_id}")

    async def _transition(
        self,
        record: ThreadRecord,
        event: lifecycle.Event,
        message: InboundMessage,
        actor: str | None = None,
    ) -> ThreadRecord:
        s, thread = self.services, self.thread
        change = lifecycle.transition(
            record.status, event, actor=actor, reopen_to=s.settings.file.policy.reopen_to
        )
        if change is None:
            return record

        async def notice(body: str) -> None:
            await s.outbound.notice(thread, f"lifecycle:{message.message_id}", body)

        await self._settling(
            "updating the conversation",
            lambda: lifecycle.apply_transition(s.engage, record.conversation_id, change, notice),
        )
        log.info(
            "thread %s -> %s (%s)",
            change.old,
            change.new,
            event.value,
            extra={"thread_key": str(thread), "conversation_id": record.conversation_id},
        )
        updated = await s.threads.update(record, status=change.new, assignee=change.assignee or "")
        await s.outbound.mirror_status(thread, change.new, message.message_id)
        return updated

    async def _command(
        self, message: InboundMessage, command: commands.Command, record: ThreadRecord | None
    ) -> None:
        s, thread = self.services, self.thread
        verdict = permissions.decide_for(
            message,
            command.name,
            s.settings.file.staff,
            status=record.status if record else None,
            starter=record.starter if record else "",
        )
        if not verdict.allowed:
            await refuse(s.outbound.adapter_or_none(thread), message, command.name, verdict)
            return
        key = f"command:{message.message_id}"
        routed = s.settings.file.routing.agent_for(thread.workspace, thread.channel)
        if command.name == "reset":
            # A new conversation, not a forgotten thread: the bot stays in it (no mention needed).
            await self._settling(
                "starting a new conversation",
                lambda: self._fresh_conversation(message, record, routed),
            )
            await s.outbound.notice(thread, key, "Starting a new conversation.")
        elif command.name == "agent":
            name = command.argument or ""
            if not await s.engage.validate_agent(name):
                await s.outbound.notice(thread, key, f"There is no agent called {name}.")
                return
            if record is not None:
                await s.threads.update(record, agent=name)
            else:
                record, _ = await s.threads.ensure(s.engage, message, name, claim=self.ledger.claim)
            await s.outbound.notice(thread, key, f"This thread is now answered by {name}.")
        elif command.name == "status":
            if record is None:
                body = f"No conversation yet; the agent would be {routed}."
            else:
                body = (
                    f"Conversation {record.conversation_id}, agent {record.agent or routed}, "
                    f"status {record.status}."
                )
            await s.outbound.notice(thread, key, body)
        else:
            if record is None:
                await s.outbound.notice(thread, key, "There is no conversation here yet.")
                return
            event = lifecycle.Event(command.name)
            # A customer asking for a person is not the person who takes the thread over.
            staff = is_staff(message, s.settings.file.staff)
            actor = message.user_id if staff else None
            changed = await self._transition(record, event, message, actor=actor)
            if changed is record:
                await s.outbound.notice(thread, key, f"This thread is already {record.status}.")

    async def _fresh_conversation(
        self, message: InboundMessage, record: ThreadRecord | None, agent: str
    ) -> ThreadRecord:
        s = self.services
        if record is None:
            ensured, _ = await s.threads.ensure(s.engage, message, agent, claim=self.ledger.claim)
            return ensured
        return await s.threads.renew(s.engage, record, message, agent=agent, reset=True)

    async def _settling(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        s = self.services
        return await settling(what, call, s.settings, s.metrics, s.sleep)
