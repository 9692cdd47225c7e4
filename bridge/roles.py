"""The role tasks of a process (listeners, workers, HTTP server): watched, reported, stopped.

A task that ends on its own (a crashed listener or worker loop) ends `wait()` and shows as
"stopped" in the readiness checks at once: a half-alive bridge that still acknowledges webhooks
but never answers them is worse than a restart.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bridge.errors import BridgeError

log = logging.getLogger(__name__)

_TASK_STOP_SECONDS = 10.0


class RoleFailed(BridgeError):
    """A role task (listener, workers, HTTP server) stopped on its own."""


class RoleTasks:
    """The running role tasks by name; the first to end on its own (or `stop()`) ends `wait()`."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.failure: BaseException | None = None
        self._done = asyncio.Event()

    def watch(self, name: str, task: asyncio.Task[Any]) -> None:
        self.tasks[name] = task
        task.add_done_callback(lambda t: self._on_task_done(name, t))

    def stop(self) -> None:
        """Ask `wait()` to return (signal handlers call this)."""
        self._done.set()

    async def wait(self) -> None:
        """Until `stop()` or until a role task ends; raises RoleFailed if one crashed."""
        await self._done.wait()
        if self.failure is not None:
            raise RoleFailed(str(self.failure)) from self.failure

    def checks(self) -> dict[str, str]:
        """Each task's readiness line."""
        return {name: "ok" if not task.done() else "stopped" for name, task in self.tasks.items()}

    async def cancel(self, *, keep: str) -> None:
        """Stop every task but `keep` (the HTTP server, stopped with what it serves)."""
        self._done.set()
        tasks = [t for name, t in self.tasks.items() if name != keep and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_TASK_STOP_SECONDS)
            for task in pending:
                log.warning("task did not stop in time", extra={"role": task.get_name()})
        for task in self.tasks.values():
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.debug("%s had failed", task.get_name())  # retrieved: no asyncio warning

    def _on_task_done(self, name: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._done.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped with an error", name, exc_info=exc, extra={"role": name})
            self.failure = exc
        else:
            # A listener that returns is done (the console at end of input), not broken.
            log.info("%s finished", name, extra={"role": name})
        self._done.set()
