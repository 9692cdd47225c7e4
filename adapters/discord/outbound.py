"""Posting into Discord threads: start the thread if needed, split, nonce, feedback buttons;
and the per-thread status line (typing plus the agent's status message)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

from adapters.discord.errors import UNANSWERED
from adapters.discord.events import DM_WORKSPACE
from adapters.discord.feedback import Feedback, feedback_view
from adapters.discord.format import nonce_for, split_message, thread_name
from adapters.discord.settings import DiscordSettings
from adapters.discord.status import TYPING_EVERY_SECONDS, StatusLine
from bridge import backoff
from bridge.chat import WORKING_STATUS
from bridge.errors import PermanentPlatformError, PlatformError
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.parts import bounded

log = logging.getLogger(__name__)

# Discord error codes meaning "that thread already exists, or this is not a thread starter":
# 160004 thread already created for this message, 50024 wrong channel type (forum, thread),
# 10008 unknown message (the key names a thread that was not started from a message here).
_THREAD_EXISTS = frozenset({160004, 50024, 10008})
# Retrying cannot help: missing access/permissions, unknown channel, locked or archived thread.
_PERMANENT = frozenset({50001, 50013, 10003, 160005, 50083})
# Threads this process has seen exist: saves a thread-start call per reply; forgetting one only
# costs a 160004 answer, so a bounded memory is enough.
_KNOWN_THREADS_MAX = 10_000
# The 5xx statuses discord.py's HTTPClient.request already repeats (5 tries, its own waits).
_RETRIED = frozenset({500, 502, 504, 524})
# Accept signs remembered until their thread's turn starts (a forgotten one costs one typing call).
_SIGNED_MEMORY = 10_000

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class Outbound:
    """`send` and `set_status` of the Discord adapter; works in any process after login."""

    def __init__(
        self,
        client: discord.Client,
        options: DiscordSettings,
        feedback: Feedback | None,
        max_parts: int,
        *,
        retry: backoff.Retry | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._max_parts = max_parts
        self._options = options
        self._feedback = feedback
        self._known_threads: OrderedDict[str, None] = OrderedDict()
        self._status: dict[ThreadKey, StatusLine] = {}
        self._signed_at: dict[ThreadKey, float] = {}
        self._retry = retry or backoff.Retry()
        self._sleep = sleep

    def close(self) -> None:
        for line in self._status.values():
            line.cancel()
        self._status.clear()

    async def send(self, reply: Reply) -> str:
        target = await self._target(reply.thread)
        last_id = ""
        parts = bounded(split_message(reply.text), self._max_parts)
        rated = self._feedback is not None and reply.kind is ReplyKind.AGENT and reply.run_id
        for index, part in enumerate(parts):
            view = feedback_view() if rated and index == len(parts) - 1 else None
            try:
                nonce = nonce_for(reply.idempotency_key, index)
                sent = await self._post(target, reply.thread, nonce, part, view)
            finally:
                if view is not None:
                    view.stop()  # clicks are handled by custom id in any process
            last_id = str(sent.id)
            if rated and self._feedback is not None and reply.run_id:
                await self._feedback.remember(reply.thread, last_id, reply.run_id)
        return last_id

    async def _post(
        self,
        target: discord.PartialMessageable,
        thread: ThreadKey,
        nonce: str,
        text: str,
        view: discord.ui.View | None,
    ) -> discord.Message:
        """One part. Safe to repeat: the nonce is enforced, so Discord returns the message it
        already has instead of a second one."""
        return await self._repeating(lambda: _post(target, text, nonce, view), thread, "post")

    async def _repeating(
        self, call: Callable[[], Awaitable[T]], thread: ThreadKey, action: str
    ) -> T:
        """`call` (safe to repeat) until it answers. discord.py waits out 429s and repeats
        500/502/504/524 itself; this repeats only what it raises at once: another 5xx, or no
        readable answer (a lost connection, a body cut short), whose outcome is unknown."""
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return await call()
            except discord.HTTPException as exc:
                again = isinstance(exc, discord.DiscordServerError) and exc.status not in _RETRIED
                if not again or attempt == self._retry.attempts:
                    raise _translate(exc, thread, action) from exc
                problem = f"{exc.status}"
            except UNANSWERED as exc:
                if attempt == self._retry.attempts:
                    raise PlatformError(
                        f"no answer from Discord to {action} in {thread}: {type(exc).__name__}"
                    ) from exc
                problem = type(exc).__name__
            log.warning("discord: %s failed (%s, attempt %d); retrying", action, problem, attempt)
            await self._sleep(self._retry.wait(attempt))
        raise AssertionError("unreachable")

    async def sign(self, thread: ThreadKey) -> None:
        """One typing indicator (Discord shows it ~10 s), from whichever process accepted the
        message; the worker's status (maybe in another process) takes over from there."""
        try:
            target = await self._target(thread)
            await target.typing()
        except discord.HTTPException as exc:
            raise _translate(exc, thread, "show typing") from exc
        except UNANSWERED as exc:
            raise PlatformError(f"typing not shown in {thread}: {exc}") from exc
        if len(self._signed_at) > _SIGNED_MEMORY:
            self._signed_at.clear()
        self._signed_at[thread] = time.monotonic()

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        line = self._status.get(thread)
        if status is None:
            if line is not None:
                del self._status[thread]
                await line.clear()
            return
        if line is None or not line.typing:
            if line is not None:
                line.cancel()
            target = await self._target(thread)
            # A typing call shown a moment ago by the accept sign still shows: the loop goes on
            # from it instead of repeating it.
            signed_at = self._signed_at.pop(thread, None)
            since = math.inf if signed_at is None else time.monotonic() - signed_at
            line = StatusLine(
                target,
                edit_seconds=self._options.status_edit_seconds,
                first_typing_after=max(0.0, TYPING_EVERY_SECONDS - since),
            )
            self._status[thread] = line
        # The core's generic "working" text is what typing already says; the agent's own
        # status texts are worth a message.
        if self._options.status_messages and status != WORKING_STATUS:
            line.show(status)

    def typing_threads(self) -> set[ThreadKey]:
        return {key for key, line in self._status.items() if line.typing}

    async def _target(self, thread: ThreadKey) -> discord.PartialMessageable:
        """Where replies for `thread` go, starting the thread from its message if needed."""
        if thread.workspace != DM_WORKSPACE and thread.thread not in self._known_threads:
            if not isinstance(self._client.get_channel(int(thread.thread)), discord.Thread):
                await self._start_thread(thread)
            self._remember_thread(thread.thread)
        guild_id = None if thread.workspace == DM_WORKSPACE else int(thread.workspace)
        return self._client.get_partial_messageable(int(thread.thread), guild_id=guild_id)

    def _remember_thread(self, thread_id: str) -> None:
        self._known_threads[thread_id] = None
        if len(self._known_threads) > _KNOWN_THREADS_MAX:
            self._known_threads.popitem(last=False)

    async def _start_thread(self, thread: ThreadKey) -> None:
        http = self._client.http
        channel_id, message_id = int(thread.channel), int(thread.thread)
        try:
            starter = await http.get_message(channel_id, message_id)
            name = thread_name(str(starter.get("content") or ""))
        except discord.HTTPException:
            name = thread_name("")
        except UNANSWERED:
            name = thread_name("")
        # Safe to repeat: starting the same thread again answers 160004.
        started = await self._repeating(
            lambda: _start(http, channel_id, message_id, name), thread, "start a thread"
        )
        if started:
            log.info("discord: started thread %s", thread)


async def _start(
    http: discord.http.HTTPClient, channel_id: int, message_id: int, name: str
) -> bool:
    """Start the thread from its message; False when it exists already."""
    try:
        await http.start_thread_with_message(
            channel_id, message_id, name=name, auto_archive_duration=1440
        )
    except discord.HTTPException as exc:
        if exc.code in _THREAD_EXISTS:
            return False
        raise
    return True


async def _post(
    target: discord.PartialMessageable, text: str, nonce: str, view: discord.ui.View | None
) -> discord.Message:
    silent = discord.AllowedMentions.none()
    if view is None:
        return await target.send(text, nonce=nonce, allowed_mentions=silent)
    return await target.send(text, nonce=nonce, allowed_mentions=silent, view=view)


def _translate(exc: discord.HTTPException, thread: ThreadKey, action: str) -> PlatformError:
    if exc.code == 160005:
        log.error("discord: thread %s is locked; cannot %s there (unlock it to continue)",
                  thread, action)  # fmt: skip
        return PermanentPlatformError(f"Discord thread {thread} is locked")
    if exc.code in _PERMANENT or exc.status in (401, 403, 404):
        log.error("discord: cannot %s in %s: %s (check the bot's permissions there)",
                  action, thread, exc.text)  # fmt: skip
        return PermanentPlatformError(f"Discord refused to {action} in {thread}: {exc.text}")
    return PlatformError(f"Discord failed to {action} in {thread}: {exc.status} {exc.text}")
