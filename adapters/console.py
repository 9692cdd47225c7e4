"""A terminal chat: each session is one thread, lines in, agent replies and status lines out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import TextIO

from bridge.adapter import Inbox
from bridge.models import InboundMessage, Reply, ReplyKind, ThreadKey

HELP = (
    "Type a message and press Enter. /new starts a new thread, /quit leaves.\n"
    "Commands for the bridge: /reset, /agent <name>, /status, /handoff, /resume, /resolve."
)
_LOCAL_COMMANDS = {"/quit", "/exit", "/new", "/help"}
# After the last answered reply, wait this long for further parts before leaving at end of input.
_SETTLE_SECONDS = 0.3


def new_session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def to_event(
    line: str, *, session_id: str, sequence: int, user_id: str, user_name: str | None
) -> InboundMessage | None:
    """A typed line as an inbound message; None for blank lines."""
    text = line.strip()
    if not text:
        return None
    return InboundMessage(
        thread=ThreadKey("console", "local", "terminal", session_id),
        message_id=f"{session_id}-{sequence}",
        user_id=user_id,
        user_name=user_name,
        text=text,
        sent_at=datetime.now(UTC),
        is_dm=True,
        ticket_id=session_id,
        command=text[1:] if text.startswith("/") else None,
    )


def render(reply: Reply) -> str:
    if reply.kind is ReplyKind.NOTICE:
        return f"[bridge] {reply.text}"
    return f"{reply.agent or 'agent'}: {reply.text}"


async def stdin_lines() -> AsyncIterator[str]:
    """Lines from the process's stdin without blocking the event loop."""
    loop = asyncio.get_running_loop()
    fd = os.dup(sys.stdin.fileno())
    pipe = os.fdopen(fd, "rb", buffering=0)
    reader = asyncio.StreamReader()
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
    except ValueError:
        # A regular file redirected to stdin: reads never block, a thread is fine.
        with pipe:
            while line := await asyncio.to_thread(pipe.readline):
                yield line.decode(errors="replace")
        return
    try:
        while line_bytes := await reader.readline():
            yield line_bytes.decode(errors="replace")
    finally:
        transport.close()
        # The pipe transport made the (shared) terminal non-blocking; the shell needs it back.
        with contextlib.suppress(OSError, ValueError):
            os.set_blocking(sys.stdin.fileno(), True)


class ConsoleAdapter:
    """Reads `lines` (default: stdin) and writes to `out` (default: stdout).

    At the end of input, `run` waits (up to `drain_timeout`) for the answer to the last message
    before returning, so `echo hi | engage-bridge chat` prints the reply.
    """

    name = "console"

    def __init__(
        self,
        *,
        lines: AsyncIterable[str] | None = None,
        out: TextIO | None = None,
        session_id: str | None = None,
        user_id: str = "console-user",
        user_name: str | None = None,
        drain_timeout: float = 300.0,
    ) -> None:
        self._lines = lines
        self._out = out or sys.stdout
        self.session_id = session_id or new_session_id()
        self.user_id = user_id
        self.user_name = user_name or os.environ.get("USER") or "you"
        self.drain_timeout = drain_timeout
        self._sequence = 0
        self._sent = 0
        self._last_submitted: str | None = None
        self._answered = asyncio.Event()
        self._answered.set()

    @property
    def thread(self) -> ThreadKey:
        return ThreadKey("console", "local", "terminal", self.session_id)

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        source = self._lines if self._lines is not None else stdin_lines()
        async for line in source:
            if line.strip() in _LOCAL_COMMANDS:
                if not self._local_command(line.strip()):
                    break
                continue
            await self._submit(inbox, line)
        await self._drain()

    def _local_command(self, command: str) -> bool:
        """Handle a command that never reaches the bridge; False means leave."""
        if command in ("/quit", "/exit"):
            return False
        if command == "/new":
            self.session_id = new_session_id()
            self._print(f"[new thread {self.thread}]")
        else:
            self._print(HELP)
        return True

    async def _submit(self, inbox: Inbox, line: str) -> None:
        self._sequence += 1
        message = to_event(
            line,
            session_id=self.session_id,
            sequence=self._sequence,
            user_id=self.user_id,
            user_name=self.user_name,
        )
        if message is None:
            return
        result = await inbox.submit(message)
        if result.accepted:
            self._last_submitted = message.message_id
            self._answered.clear()
        else:
            self._print(f"[not sent to the agent: {result.reason}]")

    async def _drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.drain_timeout):
                await self._answered.wait()
                while True:  # an answer may come in several parts
                    sent = self._sent
                    await asyncio.sleep(_SETTLE_SECONDS)
                    if sent == self._sent:
                        return

    async def send(self, reply: Reply) -> str:
        self._sent += 1
        self._print(render(reply))
        if reply.reply_to_message_id in (None, self._last_submitted):
            self._answered.set()
        return f"{reply.thread.thread}-out-{self._sent}"

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        if status:
            self._print(f"… {status}")

    async def aclose(self) -> None:
        self._answered.set()
