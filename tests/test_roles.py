"""Role tasks: the first to end on its own ends `wait()`, a crash as RoleFailed."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bridge.roles import RoleFailed, RoleTasks


async def forever() -> None:
    await asyncio.Event().wait()


async def crash() -> None:
    raise RuntimeError("gateway closed")


async def test_a_crashed_role_ends_wait_with_role_failed_and_shows_as_stopped() -> None:
    roles = RoleTasks()
    roles.watch("workers", asyncio.create_task(forever()))
    roles.watch("listener:x", asyncio.create_task(crash()))
    with pytest.raises(RoleFailed, match="gateway closed"):
        await asyncio.wait_for(roles.wait(), 5)
    assert isinstance(roles.failure, RuntimeError)
    assert roles.checks() == {"workers": "ok", "listener:x": "stopped"}
    await roles.cancel(keep="http")


async def test_a_role_that_returns_ends_wait_without_a_failure() -> None:
    roles = RoleTasks()
    roles.watch("listener:console", asyncio.create_task(asyncio.sleep(0)))
    await asyncio.wait_for(roles.wait(), 5)
    assert roles.failure is None


async def test_stop_ends_wait_and_cancel_stops_every_role_but_the_kept_one() -> None:
    roles = RoleTasks()
    http = asyncio.create_task(forever())
    workers = asyncio.create_task(forever())
    roles.watch("http", http)
    roles.watch("workers", workers)
    asyncio.get_running_loop().call_soon(roles.stop)
    await asyncio.wait_for(roles.wait(), 5)
    await roles.cancel(keep="http")
    assert workers.cancelled()
    assert not http.done()
    assert roles.failure is None  # a cancelled role after stop() is no failure
    http.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await http
