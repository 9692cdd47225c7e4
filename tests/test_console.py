"""The console adapter: lines become messages of one thread; replies and status are printed."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from adapters.console import ConsoleAdapter, to_event
from adapters.web.settings import WebSettings
from bridge.adapter import Adapter, StatusAdapter
from bridge.config import Role, Settings
from bridge.models import InboundMessage, Reply, ReplyKind, SubmitResult, ThreadKey
from bridge.runtime import BridgeRuntime
from tests.redis_server import RedisServer


async def lines_of(items: Iterable[str]) -> AsyncIterator[str]:
    for item in items:
        yield item + "\n"


class AnsweringInbox:
    """Accepts everything and answers each message from a task, like a worker would."""

    def __init__(self, adapter: ConsoleAdapter, *, accept: bool = True) -> None:
        self.adapter = adapter
        self.accept = accept
        self.received: list[InboundMessage] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.received.append(message)
        if not self.accept:
            return SubmitResult(False, "thread is handled by a human")
        self.tasks.append(asyncio.create_task(self._answer(message)))
        return SubmitResult(True, "dm")

    async def _answer(self, message: InboundMessage) -> None:
        await asyncio.sleep(0)
        await self.adapter.set_status(message.thread, "Thinking")
        reply = Reply(
            message.thread,
            f"You said: {message.text}",
            f"answer-{message.message_id}",
            agent="parrot",
            reply_to_message_id=message.message_id,
        )
        await self.adapter.send(reply)

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return True


def test_console_adapter_fulfils_the_adapter_and_status_contracts() -> None:
    adapter = ConsoleAdapter(lines=lines_of([]), out=io.StringIO())
    assert isinstance(adapter, Adapter)
    assert isinstance(adapter, StatusAdapter)
    assert adapter.name == "console"


def test_a_line_becomes_a_direct_message_in_the_session_thread() -> None:
    message = to_event("  hello  \n", session_id="s1", sequence=3, user_id="u", user_name="Ann")
    assert message is not None
    assert message.thread == ThreadKey("console", "local", "terminal", "s1")
    assert str(message.thread) == "console:local:terminal:s1"
    assert message.text == "hello"
    assert message.message_id == "s1-3"
    assert message.is_dm
    assert message.command is None
    assert message.ticket_id == "s1"


def test_slash_lines_are_commands_and_blank_lines_are_nothing() -> None:
    command = to_event("/agent parrot", session_id="s", sequence=1, user_id="u", user_name=None)
    assert command is not None
    assert command.command == "agent parrot"
    assert to_event("   \n", session_id="s", sequence=2, user_id="u", user_name=None) is None


async def test_replies_and_status_are_printed_and_run_waits_for_the_last_answer() -> None:
    out = io.StringIO()
    adapter = ConsoleAdapter(lines=lines_of(["hi", "", "there"]), out=out, session_id="s")
    inbox = AnsweringInbox(adapter)
    await asyncio.wait_for(adapter.run(inbox), timeout=5)
    printed = out.getvalue().splitlines()
    assert [m.text for m in inbox.received] == ["hi", "there"]
    assert {m.thread for m in inbox.received} == {adapter.thread}
    assert "parrot: You said: there" in printed
    assert "… Thinking" in printed


async def test_new_starts_another_thread_and_quit_stops_reading() -> None:
    out = io.StringIO()
    adapter = ConsoleAdapter(lines=lines_of(["one", "/new", "two", "/quit", "never"]), out=out)
    inbox = AnsweringInbox(adapter)
    await asyncio.wait_for(adapter.run(inbox), timeout=5)
    assert [m.text for m in inbox.received] == ["one", "two"]
    first, second = (m.thread for m in inbox.received)
    assert first != second
    assert f"[new thread {second}]" in out.getvalue()


async def test_a_message_the_bridge_does_not_take_says_why() -> None:
    out = io.StringIO()
    adapter = ConsoleAdapter(lines=lines_of(["hello"]), out=out, drain_timeout=0.5)
    await asyncio.wait_for(adapter.run(AnsweringInbox(adapter, accept=False)), timeout=5)
    assert "[not sent to the agent: thread is handled by a human]" in out.getvalue()


async def test_notices_are_marked_as_coming_from_the_bridge() -> None:
    out = io.StringIO()
    adapter = ConsoleAdapter(lines=lines_of([]), out=out)
    reply = Reply(adapter.thread, "Sorry, try again later.", "n1", kind=ReplyKind.NOTICE)
    message_id = await adapter.send(reply)
    assert out.getvalue() == "[bridge] Sorry, try again later.\n"
    assert message_id


async def test_end_of_input_gives_up_waiting_after_the_drain_timeout() -> None:
    class SilentInbox(AnsweringInbox):
        async def _answer(self, message: InboundMessage) -> None:
            return None

    adapter = ConsoleAdapter(lines=lines_of(["hello"]), out=io.StringIO(), drain_timeout=0.2)
    inbox = SilentInbox(adapter)
    await asyncio.wait_for(adapter.run(inbox), timeout=5)
    assert len(inbox.received) == 1


class TypedLines:
    """Lines typed one at a time by the test, ended with `close()`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    def type(self, line: str) -> None:
        self.queue.put_nowait(line + "\n")

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[str]:
        while (line := await self.queue.get()) is not None:
            yield line


async def wait_for_output(out: io.StringIO, needle: str, *, after: int = 0) -> str:
    deadline = asyncio.get_running_loop().time() + 20
    while needle not in out.getvalue()[after:]:
        assert asyncio.get_running_loop().time() < deadline, out.getvalue()
        await asyncio.sleep(0.02)
    return out.getvalue()[after:]


async def test_a_console_chat_through_the_whole_bridge_uses_the_history(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: object,  # flushes what earlier tests left queued (their workers answer them)
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        http_port=0,
        data_dir=tmp_path,
    )
    typed, out = TypedLines(), io.StringIO()
    console = ConsoleAdapter(lines=typed, out=out, session_id="e2e")
    roles: set[Role] = {"listeners", "workers"}
    async with BridgeRuntime(settings, adapters=[console], roles=roles) as rt:
        assert rt.emulator_url is not None  # no API key: the built-in emulator, in-process
        typed.type("Hi, my name is Ada")
        first = await wait_for_output(out, "pensions-questions-latest: ")
        assert "Nice to meet you, Ada" in first
        assert "… Reading your question…" in first
        mark = len(out.getvalue())
        typed.type("When can I take my pension?")
        second = await wait_for_output(out, "pensions-questions-latest: ", after=mark)
        assert "Turn 2. Nice to see you again, Ada." in second
        typed.close()
        await asyncio.wait_for(rt.wait(), 10)
        conversations = await rt.engage.search_own_conversations()
        assert len(conversations) == 1
        assert conversations[0].source == "console"
        assert conversations[0].data["thread_key"] == "console:local:terminal:e2e"


async def test_a_terminal_without_workers_prints_answers_from_another_process_s_worker(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: object,  # flushes what earlier tests left queued
) -> None:
    from adapters.console import ConsoleRelay

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        http_port=0,
        data_dir=tmp_path,
        platforms=[WebSettings(_env_file=None, enabled=False)],
    )
    shared = tmp_path / "emulator.sqlite3"  # the data dir's one emulator file
    typed, out = TypedLines(), io.StringIO()
    terminal = ConsoleAdapter(lines=typed, out=out, session_id="relay")
    workers: set[Role] = {"workers"}
    listeners: set[Role] = {"listeners"}
    async with (
        BridgeRuntime(settings, adapters=[ConsoleRelay()], roles=workers, emulator_file=shared),
        BridgeRuntime(settings, adapters=[terminal], roles=listeners, emulator_file=shared),
    ):
        typed.type("Hi, my name is Ada")
        answer = await wait_for_output(out, "pensions-questions-latest: ")
        typed.close()
    assert "… Reading your question…" in answer
    assert "Nice to meet you, Ada" in answer
