"""The event loop of the long-running commands: uvloop where it loads, else asyncio's own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bridge import eager

log = logging.getLogger(__name__)

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(use_uvloop: bool) -> LoopFactory | None:
    """uvloop's loop factory, or None (asyncio's default loop) when it is off or cannot load.

    uvloop has no Windows build and may be missing on an unusual platform; the bridge then runs
    unchanged on asyncio's loop, only slower (BENCHMARKS.md, "Runtime parts").
    """
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError as exc:
        log.info("uvloop is not available, using asyncio's event loop", extra={"error": str(exc)})
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool) -> T:
    """`asyncio.run(main)` on the chosen loop (`asyncio.run` takes no factory before 3.12), with
    the eager start of the tasks libraries start eagerly on 3.12 (`bridge.eager`)."""
    factory = loop_factory(use_uvloop) or asyncio.new_event_loop

    def new_loop() -> asyncio.AbstractEventLoop:
        loop = factory()
        loop.set_task_factory(eager.task_factory)  # type: ignore[arg-type]
        return loop

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)
