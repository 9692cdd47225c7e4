"""Eager task start (Python 3.11): the first step runs in the creating callback, then the task
goes on exactly like any other: current task, context, results, errors, cancellation, timeouts."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, cast

import aiohttp
import pytest

from bridge.eager import EagerStarts, task_factory
from bridge.http import HttpServer, create_app
from bridge.metrics import Metrics

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="outside")


async def from_a_callback(
    make: Callable[[], Coroutine[Any, Any, Any]], log: list[str]
) -> asyncio.Task[Any]:
    """Create and eagerly start a task in a plain loop callback, as a protocol does."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[asyncio.Task[Any]] = loop.create_future()

    def callback() -> None:
        starts = EagerStarts()
        task = starts.create_task(loop, make())
        log.append("created")
        starts.run()
        log.append("ran")
        made.set_result(task)

    loop.call_soon(callback)
    return await made


async def test_the_first_step_runs_in_the_callback_as_the_task_in_its_own_context() -> None:
    log: list[str] = []
    release = asyncio.Event()
    tasks: list[asyncio.Task[Any] | None] = []

    async def work() -> str:
        tasks.append(asyncio.current_task())
        seen.set("inside")
        log.append("first step")
        await release.wait()
        log.append(f"resumed, seen {seen.get()}")
        return "done"

    task = await from_a_callback(work, log)
    assert log == ["created", "first step", "ran"]
    assert tasks == [task]
    assert seen.get() == "outside"
    release.set()
    assert await task == "done"
    assert log[-1] == "resumed, seen inside"


async def test_a_coroutine_that_ends_in_its_first_step_gives_its_result_or_error() -> None:
    async def quick() -> int:
        return 7

    async def broken() -> int:
        raise ValueError("in the first step")

    assert await (await from_a_callback(quick, [])) == 7
    with pytest.raises(ValueError, match="first step"):
        await (await from_a_callback(broken, []))


async def test_a_started_task_cancelled_while_waiting_gets_the_cancel_where_it_waits() -> None:
    log: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("cancelled at its wait")
            raise

    task = await from_a_callback(waits, [])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["cancelled at its wait"]


async def test_a_timeout_entered_in_the_first_step_belongs_to_the_task() -> None:
    async def slow() -> str:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            return "timed out in the task"
        return "not reached"

    assert await (await from_a_callback(slow, [])) == "timed out in the task"


async def test_a_task_cancelled_before_its_first_step_is_not_started() -> None:
    loop = asyncio.get_running_loop()
    started: list[str] = []

    async def work() -> None:
        started.append("started")

    starts = EagerStarts()
    task = starts.create_task(loop, work())
    task.cancel()
    starts.run()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started == []


async def test_pipelined_requests_are_all_answered() -> None:
    server = HttpServer("127.0.0.1", 0)

    async def ready() -> dict[str, str]:
        return {"redis": "ok"}

    await server.start(create_app(metrics=Metrics(), readiness=ready))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(request * 3)  # three requests in one read
        answers = b""
        async with asyncio.timeout(10):
            while answers.count(b"HTTP/1.1 200 ") < 3:
                answers += await reader.read(4096)
        writer.close()
    finally:
        await server.stop()
    assert answers.count(b'{"status":"ok"}') == 3


class _Recorder(asyncio.Protocol):
    """A bare HTTP/1.1 server: notes the loop tick at which each request arrived whole."""

    def __init__(self, ticks: Callable[[], int], arrivals: list[int]) -> None:
        self.ticks, self.arrivals, self.data = ticks, arrivals, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.data += data
        while b"\r\n\r\n" in self.data and self.data.endswith(b"x" * 100):
            self.arrivals.append(self.ticks())
            self.data = b""
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


async def _ticks_until_a_body_arrives() -> int:
    """Loop iterations from the step that sends a POST (on a kept-alive connection) to the
    server's read of its whole body."""
    loop = asyncio.get_running_loop()
    ticks = 0

    def tick() -> None:
        nonlocal ticks, ticker
        ticks += 1
        ticker = loop.call_soon(tick)

    ticker = loop.call_soon(tick)
    arrivals: list[int] = []
    server = await loop.create_server(lambda: _Recorder(lambda: ticks, arrivals), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # the first one opens the connection
                sent = ticks
                async with session.post(f"http://127.0.0.1:{port}/", data=b"x" * 100) as answer:
                    assert await answer.read() == b"ok"
    finally:
        ticker.cancel()
        server.close()
    return arrivals[-1] - sent


async def test_aiohttp_request_bodies_leave_one_iteration_sooner() -> None:
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()
    try:
        # Python 3.11: the body's task waits an iteration (best of 3: a busy kernel may add one).
        loop.set_task_factory(None)
        plain = min([await _ticks_until_a_body_arrives() for _ in range(3)])
        loop.set_task_factory(task_factory)  # type: ignore[arg-type]
        eager = min([await _ticks_until_a_body_arrives() for _ in range(3)])
    finally:
        loop.set_task_factory(factory)
    assert eager == plain - 1  # asyncio's loop: 2 -> 1, uvloop: 1 -> 0
