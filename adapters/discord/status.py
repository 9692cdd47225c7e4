"""Agent status in a Discord thread: the typing indicator, plus the agent's own status text as
one message edited in place (throttled) and deleted before the answer is posted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

import discord

from adapters.discord.errors import UNANSWERED

log = logging.getLogger(__name__)

# Discord shows "typing" for ~10 s per call; the cap stops a forgotten indicator.
TYPING_EVERY_SECONDS = 8.0
TYPING_MAX_SECONDS = 600.0
# The answer waits at most this long for the status message to go (a 429 on the delete can
# take longer; the message then goes right after the answer).
CLEAR_WAIT_SECONDS = 3.0
STATUS_MAX_CHARS = 150
# Typing can never work here: missing access or permissions, unknown channel.
_TYPING_PERMANENT = frozenset({50001, 50013, 10003})
_SILENT = discord.AllowedMentions.none()


def status_text(text: str) -> str:
    """One short line, rendered as Discord's small grey subtext."""
    line = " ".join(text.split())
    if len(line) > STATUS_MAX_CHARS:
        line = line[: STATUS_MAX_CHARS - 1] + "…"
    return f"-# {line}"


class StatusLine:
    """One thread's indicator while a turn runs. Never raises: status is decoration."""

    def __init__(
        self,
        target: discord.PartialMessageable,
        *,
        edit_seconds: float,
        first_typing_after: float = 0.0,
    ) -> None:
        self._target = target
        self._first_typing_after = first_typing_after
        self._edit_seconds = edit_seconds
        self._desired: str | None = None
        self._shown: str | None = None
        self._message: discord.PartialMessage | None = None
        self._changed = asyncio.Event()
        self._cleared = asyncio.Event()
        self._typing = asyncio.create_task(self._keep_typing())
        self._writer: asyncio.Task[None] | None = None

    @property
    def typing(self) -> bool:
        return not self._typing.done()

    @property
    def message_id(self) -> int | None:
        return None if self._message is None else self._message.id

    def show(self, text: str) -> None:
        """Show `text` as the status message (posted once, then edited; latest text wins)."""
        if self._cleared.is_set():
            return
        self._desired = status_text(text)
        self._changed.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def clear(self) -> None:
        """Stop typing and delete the status message, waiting a little for the delete."""
        self._typing.cancel()
        self._desired = None
        self._cleared.set()
        self._changed.set()
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=CLEAR_WAIT_SECONDS)

    def cancel(self) -> None:
        self._typing.cancel()
        if self._writer is not None:
            self._writer.cancel()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        next_edit = 0.0
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._message is not None and not self._cleared.is_set():
                # Rate-limit aware: texts arriving faster than edit_seconds overwrite each other.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cleared.wait(), next_edit - loop.time())
            desired = self._desired
            if desired != self._shown:
                await self._apply(desired)
                next_edit = loop.time() + self._edit_seconds
            if self._cleared.is_set() and self._desired is None and self._shown is None:
                return

    async def _apply(self, desired: str | None) -> None:
        try:
            if desired is None:
                if self._message is not None:
                    await self._message.delete()
            elif self._message is None:
                self._message = await self._post(desired)
            else:
                await self._message.edit(content=desired)
        except discord.NotFound:
            pass  # deleted by a moderator, or the thread is gone: nothing left to update
        except discord.HTTPException as exc:
            log.info("discord: status message not updated: %s", exc)
        except UNANSWERED as exc:
            log.info("discord: status message not updated: %s: %s", type(exc).__name__, exc)
        # Not retried: a failed status update is shown stale at worst, then deleted.
        self._shown = desired
        if desired is None:
            self._message = None

    async def _post(self, text: str) -> discord.PartialMessage:
        """Post the status message. An answer that never came may hide a message that exists:
        asked once more with the same (enforced) nonce, Discord names it, so it is not left
        behind undeletable."""
        nonce = secrets.token_hex(12)
        try:
            sent = await self._send(text, nonce)
        except UNANSWERED as exc:
            log.info("discord: status message answer lost (%s); asking again", type(exc).__name__)
            sent = await self._send(text, nonce)
        return self._target.get_partial_message(sent.id)

    async def _send(self, text: str, nonce: str) -> discord.Message:
        return await self._target.send(text, nonce=nonce, allowed_mentions=_SILENT, silent=True)

    async def _keep_typing(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TYPING_MAX_SECONDS
        if self._first_typing_after > 0:
            await asyncio.sleep(self._first_typing_after)
        while loop.time() < deadline:
            try:
                await self._target.typing()
            except discord.HTTPException as exc:
                if exc.code in _TYPING_PERMANENT or exc.status in (401, 403, 404):
                    log.warning("discord: typing indicator failed for good: %s", exc)
                    return
                log.info("discord: typing indicator failed: %s", exc)
            except Exception as exc:
                # A broken answer (truncated JSON from a proxy, a closed session) must not end
                # this task with an exception nobody retrieves.
                log.info("discord: typing indicator failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(TYPING_EVERY_SECONDS)
