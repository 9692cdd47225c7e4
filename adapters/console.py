"""A terminal chat: each session is one thread, lines in, agent replies and status lines out.

Replies travel through Redis: `ConsoleRelay.send` (in whichever process's worker answered the
thread, a `run` or the `chat` itself) appends to the thread's stream, and the `chat` process
that holds the terminal prints from it. So `chat` can share the data dir and Redis of a running
`run` (one place for every thread) without either process stealing the other's answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any, TextIO

from bridge.adapter import Inbox
from bridge.codec import text as decoded
from bridge.config import Settings
from bridge.models import InboundMessage, Reply, ReplyKind, ThreadKey
from bridge.store import Namespace, RedisClient, storage

HELP = (
    "Type a message and press Enter. /new starts a new thread, /quit leaves.\n"
    "Commands for the bridge: /reset, /agent <name>, /status, /handoff, /resume, /resolve."
)
_LOCAL_COMMANDS = {"/quit", "/exit", "/new", "/help"}
# After the last answered reply, wait this long for further parts before leaving at end of input.
_SETTLE_SECONDS = 0.3
_KEYS = Namespace("console")
# A terminal reads its thread's stream live; a day covers a paused laptop, and the cap bounds a
# stream nobody reads any more (a chat that was closed while its answer was on the way).
_OUT_TTL_SECONDS = 24 * 3600
_OUT_MAX_ENTRIES = 1000
_READ_BLOCK_MS = 500


def out_key(thread: ThreadKey) -> str:
    """Stream of the thread's replies and status lines, for the terminal that prints them."""
    return _KEYS.thread(thread, "out")


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


def render(kind: str, text: str, agent: str | None) -> str:
    if kind == "status":
        return f"… {text}"
    if kind == ReplyKind.NOTICE:
        return f"[bridge] {text}"
    return f"{agent or 'agent'}: {text}"


def reply_fields(reply: Reply) -> dict[str, str]:
    return {
        "kind": str(reply.kind),
        "text": reply.text,
        "agent": reply.agent or "",
        "reply_to": reply.reply_to_message_id or "",
    }


class ConsoleRelay:
    """The console's sending half, in every process: replies go to the thread's stream."""

    name = "console"

    def __init__(self, redis: RedisClient | None = None) -> None:
        self._redis = redis

    def attach(self, redis: RedisClient) -> None:
        """The runtime's Redis, for an adapter built before it was started (chat's terminal)."""
        self._redis = redis

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        await asyncio.Event().wait()  # the terminal is in the `chat` process

    async def send(self, reply: Reply) -> str:
        return await self._publish(reply.thread, reply_fields(reply))

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        if status:
            await self._publish(thread, {"kind": "status", "text": status})

    async def aclose(self) -> None:
        return None

    async def _publish(self, thread: ThreadKey, fields: dict[str, str]) -> str:
        if self._redis is None:
            raise RuntimeError("the console relay has no Redis")
        key, entry = out_key(thread), dict[Any, Any](fields)
        async with storage("console reply"), self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, entry, maxlen=_OUT_MAX_ENTRIES, approximate=True)
            pipe.expire(key, _OUT_TTL_SECONDS)
            entry_id, _ = await pipe.execute()
        return f"{thread.thread}-out-{decoded(entry_id)}"


def create_adapter(settings: Settings, redis: RedisClient) -> ConsoleRelay:
    return ConsoleRelay(redis)


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


class ConsoleAdapter(ConsoleRelay):
    """Reads `lines` (default: stdin) and writes to `out` (default: stdout).

    With Redis attached, replies are printed from the streams the relays write; without, `send`
    prints them itself. At the end of input, `run` waits (up to `drain_timeout`) for the answer
    to the last message before returning, so `echo hi | engage-bridge chat` prints the reply.
    """

    def __init__(
        self,
        *,
        redis: RedisClient | None = None,
        lines: AsyncIterable[str] | None = None,
        out: TextIO | None = None,
        session_id: str | None = None,
        user_id: str = "console-user",
        user_name: str | None = None,
        drain_timeout: float = 300.0,
    ) -> None:
        super().__init__(redis)
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

    async def run(self, inbox: Inbox) -> None:
        printer = asyncio.create_task(self._print_replies()) if self._redis else None
        try:
            source = self._lines if self._lines is not None else stdin_lines()
            async for line in source:
                if line.strip() in _LOCAL_COMMANDS:
                    if not self._local_command(line.strip()):
                        break
                    continue
                await self._submit(inbox, line)
            await self._drain()
        finally:
            if printer is not None:
                printer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await printer

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

    async def _print_replies(self) -> None:
        """Print what the relays wrote for this terminal's current thread, in order."""
        assert self._redis is not None
        cursor, key = "0-0", out_key(self.thread)
        while True:
            if key != out_key(self.thread):  # /new: the new thread's stream, from its start
                cursor, key = "0-0", out_key(self.thread)
            async with storage("console read"):
                reply: Any = await self._redis.xread({key: cursor}, count=100, block=_READ_BLOCK_MS)
            if isinstance(reply, dict):  # RESP3
                reply = list(reply.items())
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    cursor = decoded(entry_id)
                    self._show({decoded(k): decoded(v) for k, v in fields.items()})

    def _show(self, fields: dict[str, str]) -> None:
        kind = fields.get("kind", "agent")
        self._print(render(kind, fields.get("text", ""), fields.get("agent") or None))
        if kind == "status":
            return
        self._sent += 1
        if fields.get("reply_to") in ("", self._last_submitted):
            self._answered.set()

    async def send(self, reply: Reply) -> str:
        if self._redis is not None:
            return await super().send(reply)
        self._show(reply_fields(reply))
        return f"{reply.thread.thread}-out-{self._sent}"

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        if self._redis is not None:
            await super().set_status(thread, status)
        elif status:
            self._show({"kind": "status", "text": status})

    async def aclose(self) -> None:
        self._answered.set()
