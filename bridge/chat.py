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
    EngageStatusError,
    EngageStreamError,
    EngageTransportError,
    OutcomeUnknown,
    RateLimited,
    ServerError,
)
from bridge.engage.models import MessageRead, UserMessage
from bridge.metrics import Metrics
from bridge.models import InboundMessage, Reply, ThreadKey
from bridge.outbound import Outbound

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

# Shown from the first moment of every agent call, so a thread never looks dead while the agent
# works; status messages the agent streams replace it.
WORKING_STATUS = "Thinking…"


class TurnFailed(Exception):
    """The agent could not answer this batch; `permanent` means retrying would not help."""

    def __init__(self, error: str, *, permanent: bool) -> None:
        super().__init__(error)
        self.permanent = permanent


def user_message(message: InboundMessage, name: str | None = None) -> UserMessage:
    lines = [message.text, *(f"[attachment: {a.name} {a.url}]" for a in message.attachments)]
    content = "\n".join(line for line in lines if line)
    return UserMessage(content=content, name=name if name is not None else message.user_name)


def history_after(history: Sequence[MessageRead], mark: str) -> list[MessageRead]:
    """The messages after `mark` (the last message a completed turn saw); all if unknown."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].id == mark:
            return list(history[index + 1 :])
    return list(history)


@dataclass(frozen=True, slots=True)
class Reconciled:
    saved: bool
    answers: tuple[MessageRead, ...] = ()


def reconcile(tail: Sequence[MessageRead], sent: Sequence[UserMessage]) -> Reconciled:
    """Were `sent` already stored by an earlier attempt, and did the agent answer them?"""
    contents = [m.content for m in sent]
    users = [(i, m) for i, m in enumerate(tail) if m.role == "user"]
    for start in range(len(users) - len(contents), -1, -1):
        window = users[start : start + len(contents)]
        if [m.content for _, m in window] != contents:
            continue
        after = window[-1][0] + 1 if window else 0
        answers = tuple(m for m in tail[after:] if m.is_agent)
        return Reconciled(saved=True, answers=answers)
    return Reconciled(saved=False)


def is_transient(exc: EngageError) -> bool:
    if isinstance(exc, RateLimited | ServerError | EngageTransportError | OutcomeUnknown):
        return True
    if isinstance(exc, EngageStreamError | EngageProtocolError):
        return True
    return isinstance(exc, EngageStatusError) and exc.status_code in (408, 409, 425)


async def retrying(
    what: str,
    call: Callable[[], Awaitable[T]],
    settings: Settings,
    metrics: Metrics,
    sleep: Sleep,
) -> T:
    """`call` retried on transient Engage errors; TurnFailed once retrying cannot help."""
    attempts = settings.agent_attempts
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except EngageError as exc:
            error = f"{what} failed: {type(exc).__name__}: {exc}"
            if not is_transient(exc):
                raise TurnFailed(error, permanent=True) from exc
            if attempt == attempts:
                raise TurnFailed(error, permanent=False) from exc
            metrics.agent_retries.inc()
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            pause = backoff.delay(
                attempt,
                base=settings.agent_backoff_seconds,
                cap=settings.agent_backoff_max_seconds,
                retry_after=retry_after,
            )
            log.warning("%s (attempt %d of %d), retrying in %.2fs", error, attempt, attempts, pause)
            await sleep(pause)
    raise AssertionError("unreachable")


@dataclass
class AgentTurn:
    """Chat for one batch of user messages, retried with backoff; returns the history mark."""

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
        on_attempt: Callable[[int], Awaitable[None]],
    ) -> str:
        sent = [user_message(m) for m in batch]
        attempt = 0

        async def once() -> str:
            nonlocal attempt
            attempt += 1
            await on_attempt(attempt)
            await self._show_status(thread, WORKING_STATUS)
            # Any earlier attempt may have stored the messages: look before sending again.
            check = reconcile_first or attempt > 1
            return await self._once(thread, conversation_id, agent, sent, mark, check)

        try:
            return await retrying("agent chat", once, self.settings, self.metrics, self.sleep)
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
        to_send = sent
        if check_history:
            started = time.monotonic()
            tail = history_after(await self.engage.get_messages(conversation_id), mark)
            self.agent_seconds += time.monotonic() - started
            found = reconcile(tail, sent)
            if found.saved:
                log.info(
                    "retried turn: user messages already stored, %d answer(s) found",
                    len(found.answers),
                    extra={"thread_key": str(thread), "conversation_id": conversation_id},
                )
                if found.answers:
                    await self._show_status(thread, None)
                    for answer in found.answers:
                        await self._post(thread, conversation_id, agent, answer)
                    return found.answers[-1].id
                to_send = []
        return await self._stream(thread, conversation_id, agent, to_send)

    async def _stream(
        self, thread: ThreadKey, conversation_id: str, agent: str, to_send: list[UserMessage]
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
                    elif message.is_agent:
                        self.agent_seconds += time.monotonic() - started
                        # The answer replaces the status: it never shows under a finished reply.
                        await self._show_status(thread, None)
                        await self._post(thread, conversation_id, agent, message)
                        started = time.monotonic()
                        last_id = message.id
        finally:
            self.agent_seconds += time.monotonic() - started
        return last_id

    async def _post(
        self, thread: ThreadKey, conversation_id: str, agent: str, message: MessageRead
    ) -> None:
        await self.outbound.post(
            Reply(
                thread=thread,
                text=message.content,
                idempotency_key=message.id,
                conversation_id=conversation_id,
                agent=message.name or agent,
            )
        )
