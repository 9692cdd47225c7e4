"""Eager task start on Python 3.11: a new task's first step runs at once, not an iteration later.

Python 3.12 has it built in (`asyncio.Task(..., eager_start=True)`); with 3.12 this module goes.
The HTTP server creates a task per request from inside its protocol's `data_received`; the task's
first step then waits for the next loop iteration, behind all work that is ready, which on a
saturated loop is 20-40 ms (BENCHMARKS.md, "Loop hops to the first sign"). Started eagerly, the
request runs up to its first real wait (the accept script's round trip) in the same callback
that read it.
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["EAGER_COROUTINES", "EagerStarts", "task_factory"]


class _Resumable(Coroutine[Any, Any, Any]):
    """A coroutine whose first step may have run already; its task takes up from there."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        # What the first step gave, until the task's own first step picks it up.
        self._first: tuple[str, Any] | None = None

    def run_first_step(self) -> None:
        try:
            self._first = ("yield", self._coro.send(None))
        except StopIteration as done:
            self._first = ("return", done.value)
        except BaseException as exc:  # the task raises it, as it would have
            self._first = ("raise", exc)

    def send(self, value: Any) -> Any:
        first, self._first = self._first, None
        if first is None:
            return self._coro.send(value)
        kind, outcome = first
        if kind == "yield":
            return outcome
        if kind == "return":
            raise StopIteration(outcome)
        raise outcome

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._first is not None and self._first[0] != "yield":
            return self.send(None)  # it ended in its first step: that outcome stands
        self._first = None  # suspended where it yielded: the exception lands there
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._first = None
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError("started by EagerStarts: only its task runs it")


def _first_step(
    loop: asyncio.AbstractEventLoop,
    task: asyncio.Task[Any],
    resumable: _Resumable,
    context: contextvars.Context,
) -> None:
    """Run `task`'s first step now, as the current task (a running one steps aside meanwhile,
    as Python 3.12's eager start does)."""
    current = asyncio.current_task(loop)
    if current is not None:
        _leave_task(loop, current)
    _enter_task(loop, task)
    try:
        context.run(resumable.run_first_step)
    finally:
        _leave_task(loop, task)
        if current is not None:
            _enter_task(loop, current)


class EagerStarts:
    """Tasks whose first step runs at `run()`, in the callback that created them.

    `create_task` makes the task at once (so it is known, counted and cancellable as usual);
    `run()` runs the first step of each, with the task as the current task and in its context.
    The task's own first step, a loop iteration later, only picks up where that stopped.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[tuple[asyncio.Task[Any], _Resumable, contextvars.Context]] = []

    def create_task(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
    ) -> asyncio.Task[Any]:
        context = contextvars.copy_context()
        resumable = _Resumable(coro)
        task = loop.create_task(resumable, context=context)
        self._pending.append((task, resumable, context))
        return task

    def run(self) -> None:
        while self._pending:
            task, resumable, context = self._pending.pop(0)
            if not (task.done() or task.cancelling()):
                _first_step(task.get_loop(), task, resumable, context)


# Coroutines their library starts eagerly itself on Python 3.12+, so they are written for it:
# aiohttp writes a request's body in a task of its own (on 3.11 the body, and with it the whole
# request, left a loop iteration later: 4 requests per turn, the accept sign's among them).
EAGER_COROUTINES = frozenset({"ClientRequest.write_bytes"})


def task_factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    *,
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    """The loop's task factory: tasks of `EAGER_COROUTINES` start eagerly, others as usual."""
    if getattr(coro, "__qualname__", None) not in EAGER_COROUTINES:
        return asyncio.Task(coro, loop=loop, context=context)
    context = context if context is not None else contextvars.copy_context()
    resumable = _Resumable(coro)
    task = asyncio.Task(resumable, loop=loop, context=context)
    _first_step(loop, task, resumable, context)
    return task
