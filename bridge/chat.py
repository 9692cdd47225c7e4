"""One crash-safe exchange with the agent: reconcile with the history, chat, post each answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar, cast

from bridge import backoff
from bridge.config import Settings
from bridge.engage.client import EngageClient
from bridge.engage.errors import (
    EngageError,
    EngageProtocolError,
    EngageStreamError,
    EngageTransportError,
    OutcomeUnknown,
    RateLimited,
    ServerError,
)
from bridge.engage.models import MessageRead, UserMessage
from bridge.metrics import Metrics
from bridge.models import InboundMessage, Reply, ThreadKey
from bridge.outbound import WORKING_STATUS, Outbound
from bridge.reconcile import Reconciled, history_after, reconcile

__all__ = ["WORKING_STATUS", "AgentTurn", "TurnFailed", "settling", "user_message"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


# Polling the history for the answer of a run still working on stored messages.
FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 2.0


class AnswerMissing(EngageProtocolError):
    """The agent was asked again about stored messages and no run has answered them."""


# Final errors that may pass (the client ran out of tries): a replayed dead letter may succeed.
_PASSING = (RateLimited, ServerError, EngageTransportError)


class TurnFailed(Exception):
    """The agent could not answer this batch; `permanent` means retrying would not help."""

    def __init__(self, error: str, *, permanent: bool) -> None:
        super().__init__(error)
        self.permanent = permanent


def user_message(message: InboundMessage, name: str | None = None) -> UserMessage:
    lines = [message.text, *(f"[attachment: {a.name} {a.url}]" for a in message.attachments)]
    content = "\n".join(line for line in lines if line)
    return UserMessage(content=content, name=name if name is not None else message.user_name)


def is_unsettled(exc: EngageError) -> bool:
    """The client could not know what its request did (a chat's 5xx, a lost response, a broken
    stream, a body not as the contract says): the next round reads the history first."""
    return isinstance(exc, OutcomeUnknown | EngageStreamError | EngageProtocolError)


async def settling(
    what: str,
    call: Callable[[], Awaitable[T]],
    settings: Settings,
    metrics: Metrics,
    sleep: Sleep,
) -> T:
    """`call`, run again only while its outcome is unknown, at most `agent_attempts` rounds;
    TurnFailed once that cannot help.

    Not a second retry layer: the Engage client already repeated what is safe to repeat (its
    errors here are final), and `call` reconciles with the history before it acts again, so
    nothing is sent twice (bridge/engage/client.py)."""
    attempts = settings.agent_attempts
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except EngageError as exc:
            error = f"{what} failed: {type(exc).__name__}: {exc}"
            if not is_unsettled(exc):
                raise TurnFailed(error, permanent=not isinstance(exc, _PASSING)) from exc
            if attempt == attempts:
                raise TurnFailed(error, permanent=False) from exc
            metrics.agent_retries.inc()
            pause = backoff.delay(
                attempt, base=settings.agent_backoff_seconds, cap=settings.agent_backoff_max_seconds
            )
            log.warning(
                "%s (round %d of %d), reconciling in %.2fs", error, attempt, attempts, pause
            )
            await sleep(pause)
    raise AssertionError("unreachable")


@dataclass
class AgentTurn:
    """Chat for one batch of user messages, reconciled after an unknown outcome; returns the
    history mark."""

    engage: EngageClient
    outbound: Outbound
    settings: Settings
    metrics: Metrics
    sleep: Sleep = asyncio.sleep
    agent_seconds: float = 0.0
    status_shown: bool = False

    async def answer(
        self,
        thread: ThreadKey,
        conversation_id: str,
        agent: str,
        batch: Sequence[InboundMessage],
        mark: str,
        *,
        reconcile_first: bool,
        on_attempt: Callable[[int], Awaitable[None]] | None = None,
    ) -> str:
        sent = [user_message(m) for m in batch]
        attempt = 0

        async def once() -> str:
            nonlocal attempt
            attempt += 1
            if on_attempt is not None:
                await on_attempt(attempt)
            await self._show_status(thread, WORKING_STATUS)
            # Any earlier attempt may have stored the messages: look before sending again.
            check = reconcile_first or attempt > 1
            return await self._once(thread, conversation_id, agent, sent, mark, check)

        try:
            return await settling("agent chat", once, self.settings, self.metrics, self.sleep)
        finally:
            # Also on errors and cancellation: a stale "Thinking…" would claim work that stopped.
            await self._show_status(thread, None)

    async def _show_status(self, thread: ThreadKey, status: str | None) -> None:
        if status is None and not self.status_shown:
            return
        self.status_shown = status is not None
        await self.outbound.set_status(thread, status)

    async def _once(
        self,
        thread: ThreadKey,
        conversation_id: str,
        agent: str,
        sent: list[UserMessage],
        mark: str,
        check_history: bool,
    ) -> str:
        if not check_history:
            # No earlier attempt began this batch: what this stream answers is posted fresh.
            return await self._stream(thread, conversation_id, agent, sent, fresh=True)
        found = await self._look(conversation_id, sent, mark)
        if not found.saved:
            return await self._stream(thread, conversation_id, agent, sent)
        extra = {"thread_key": str(thread), "conversation_id": conversation_id}
        log.info(
            "retried turn: user messages already stored, %d run(s) on them, %d answered",
            len(found.runs),
            len(found.answered),
            extra=extra,
        )
        if found.awaiting_run:
            # A run is (or was) working on them: asking again would start a second run.
            found = await self._await_answer(conversation_id, sent, mark)
        if not found.answers:
            log.info("asking the agent again about stored messages", extra=extra)
            # Shown live only: whatever this run answers is posted by the rule below, so a run
            # that was working all along and answered first still wins.
            await self._stream(thread, conversation_id, agent, [], post=False)
            found = await self._look(conversation_id, sent, mark)
            if not found.answers:
                raise AnswerMissing("no run answered the stored messages")
        return await self._post_chosen(thread, conversation_id, agent, found)

    async def _look(self, conversation_id: str, sent: list[UserMessage], mark: str) -> Reconciled:
        started = time.monotonic()
        try:
            history = await self.engage.get_messages(conversation_id)
            # Read after the history, so every run with a message in it is listed.
            runs = await self.engage.get_conversation_runs(conversation_id)
        finally:
            self.agent_seconds += time.monotonic() - started
        return reconcile(history_after(history, mark), sent, runs)

    async def _await_answer(
        self, conversation_id: str, sent: list[UserMessage], mark: str
    ) -> Reconciled:
        """Poll until a run answers the stored messages or the wait is over."""
        wait = self.settings.agent_answer_wait_seconds
        deadline = time.monotonic() + (
            self.settings.engage_timeout_seconds if wait is None else wait
        )
        pause = FIRST_POLL_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self._look(conversation_id, sent, mark)
            started = time.monotonic()
            await self.sleep(min(pause, remaining))
            self.agent_seconds += time.monotonic() - started
            pause = min(pause * 2, MAX_POLL_SECONDS)
            found = await self._look(conversation_id, sent, mark)
            if found.answers or not found.awaiting_run:
                return found

    async def _post_chosen(
        self, thread: ThreadKey, conversation_id: str, agent: str, found: Reconciled
    ) -> str:
        candidates = [m.id for run in found.answered for m in run.messages]
        posted = {key for key in candidates if await self.outbound.already_posted(thread, key)}
        answers = found.chosen(posted)
        if len(found.answered) > 1:
            log.warning(
                "%d runs answered one batch; posting one",
                len(found.answered),
                extra={"thread_key": str(thread), "conversation_id": conversation_id},
            )
        for answer in answers:
            await self._post_answer(thread, conversation_id, agent, answer)
        return answers[-1].id

    async def _stream(
        self,
        thread: ThreadKey,
        conversation_id: str,
        agent: str,
        to_send: list[UserMessage],
        *,
        post: bool = True,
        fresh: bool = False,
    ) -> str:
        last_id = ""
        started = time.monotonic()
        stream = cast(
            AsyncGenerator[MessageRead, None],
            self.engage.chat_stream(conversation_id, to_send, agent=agent),
        )
        try:
            # Closed here, not by the garbage collector, even when the turn is cancelled.
            async with aclosing(stream):
                async for message in stream:
                    if message.is_status:
                        await self._show_status(thread, message.content)
                    elif message.is_info:
                        log.debug("info message withheld", extra={"thread_key": str(thread)})
                    elif message.is_agent and post:
                        self.agent_seconds += time.monotonic() - started
                        await self._post_answer(thread, conversation_id, agent, message, fresh)
                        started = time.monotonic()
                        last_id = message.id
        finally:
            self.agent_seconds += time.monotonic() - started
        return last_id

    async def _post_answer(
        self,
        thread: ThreadKey,
        conversation_id: str,
        agent: str,
        message: MessageRead,
        fresh: bool = False,
    ) -> None:
        """The answer replaces the status: it never shows under a finished reply. Where the post
        itself clears it (Slack), that saves one platform call per answer."""
        by_post = self.status_shown and await self.outbound.post_clears_status(thread)
        if not by_post:
            await self._show_status(thread, None)
        await self._post(thread, conversation_id, agent, message, fresh)
        if by_post:
            self.status_shown = False  # only once posted: a failed post still clears it

    async def _post(
        self,
        thread: ThreadKey,
        conversation_id: str,
        agent: str,
        message: MessageRead,
        fresh: bool,
    ) -> None:
        await self.outbound.post(
            Reply(
                thread=thread,
                text=message.content,
                idempotency_key=message.id,
                conversation_id=conversation_id,
                agent=message.name or agent,
                run_id=message.run_id or None,
                fresh=fresh,
                retried=not fresh,  # else posted after a look at the history (an attempt > 1)
            )
        )
