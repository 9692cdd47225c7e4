"""A heartbeat that crosses the holder's own commit (single Redis and Cluster).

The commit that lets a thread go deletes the lease; a heartbeat that Redis runs after it finds
the lease gone. Until the holder has read the commit's reply it cannot tell that from a lease
lost to another worker: it must not stop the turn (a spurious warning, the commit's reply thrown
away and, on a Cluster, the entry acknowledged only once another worker takes it over).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bridge.store import keys
from tests.fixtures_core import (
    NewCore,
    core_settings,
    message,
    running,
    thread_key,
    wait_until,
)


class CrossedCommit:
    """Holds the first commit's reply, after Redis ran it, until two heartbeats sent after it
    found the lease gone, the second one after the heartbeat's pause (or the holder was stopped):
    the window in which a heartbeat and the commit that let go cross, held open."""

    def __init__(self, phases: Any) -> None:
        self._commit = phases._commit
        self._heartbeat = phases._heartbeat
        self.committed = False
        self.holding = False
        self.beats_after_commit: list[int] = []
        self.sent_while_holding = 0
        self.commit_reply: int | None = None
        self._two_beats = asyncio.Event()

    async def commit(self, **kwargs: Any) -> Any:
        if self.committed:
            return await self._commit(**kwargs)
        reply = await self._commit(**kwargs)
        self.committed = self.holding = True
        self.commit_reply = int(reply)
        try:
            async with asyncio.timeout(15):
                await self._two_beats.wait()
        finally:
            self.holding = False
        return reply

    async def heartbeat(self, **kwargs: Any) -> Any:
        after = self.committed
        self.sent_while_holding += self.holding
        reply = await self._heartbeat(**kwargs)
        if after:
            self.beats_after_commit.append(int(reply))
            if len(self.beats_after_commit) == 2:
                self._two_beats.set()  # the commit's reply is read in the next loop iteration
        return reply


async def pending_entries(redis: Any) -> int:
    summary = await redis.xpending(keys.READY_STREAM, keys.WORKER_GROUP)
    return int(summary["pending"])


async def test_a_heartbeat_that_crosses_the_commit_letting_go_is_silent_and_the_entry_acked(
    any_redis: Any,
    emulator: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    new_core: NewCore,
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    # A heartbeat every second; an entry looks idle (taken over, acknowledged late) only after
    # a minute, far beyond the test's waits.
    settings = core_settings(lease_seconds=3.0, claim_idle_seconds=60.0)
    bridge, adapter = new_core(settings, redis=any_redis)
    phases = bridge.store.threads._phases
    crossed = CrossedCommit(phases)
    monkeypatch.setattr(phases, "_commit", crossed.commit)
    monkeypatch.setattr(phases, "_heartbeat", crossed.heartbeat)
    thread = thread_key("crossed")
    await bridge.submit(message(thread, "hello"))
    async with running(bridge):
        await wait_until(lambda: adapter.texts() == ["You said: hello"], timeout=15)
        await wait_until(lambda: len(crossed.beats_after_commit) >= 2, timeout=15)

        async def acked() -> bool:
            return await pending_entries(any_redis) == 0

        await wait_until(acked, timeout=10)
        await bridge.submit(message(thread, "again"))
        await wait_until(lambda: len(adapter.sent) == 2, timeout=15)
    assert crossed.commit_reply == 2  # nothing pending: the commit let the lease go
    assert crossed.beats_after_commit[:2] == [0, 0]  # and the heartbeats behind it found it gone
    assert crossed.sent_while_holding == 2  # each after the heartbeat's pause: no busy loop
    assert adapter.texts() == ["You said: hello", "You said: again"]
    assert "lease lost" not in caplog.text
    assert "left for another worker" not in caplog.text
    assert bridge.metrics.threads_recovered._value.get() == 0
