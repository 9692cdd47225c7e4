"""A process that stops mid-turn hands its threads back: another one answers them at once."""

from __future__ import annotations

from typing import Any

from bridge.core import Bridge
from bridge.store import Hold
from bridge.threadmap import RedisClient
from tests.fixtures_core import (
    NewCore,
    RecordingAdapter,
    core_settings,
    message,
    running,
    thread_key,
    wait_until,
)
from tests.fixtures_emulator import hold_answers, release_answers


def bridges(new_core: NewCore, redis: RedisClient) -> tuple[Bridge, Bridge, RecordingAdapter]:
    """A process that will stop mid-turn and another one (with its adapter), with production's
    lease, claim and blocking read: a stopped worker's thread would wait 30 + 60 s for them."""
    settings = core_settings(lease_seconds=30.0, claim_idle_seconds=60.0, worker_block_seconds=5.0)
    stopping, _ = new_core(settings, redis=redis, consumer="stopping")
    other, adapter = new_core(settings, redis=redis, consumer="other")
    return stopping, other, adapter


async def stop_mid_turn(stopping: Bridge, emulator: Any, text: str) -> None:
    hold_answers(emulator, runs=1)
    async with running(stopping):
        await stopping.submit(message(thread_key(text), text))
        await wait_until(lambda: emulator.faults.answers_held == 1)  # mid-turn
    # Its workers are cancelled while the agent still works on the answer.
    release_answers(emulator)


async def answered_by(bridge: Bridge, adapter: RecordingAdapter) -> list[str]:
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1, timeout=10.0)

        async def settled() -> bool:
            return await bridge.queue_depth() == 0

        await wait_until(settled)
    assert await bridge.dead_letters.list() == []
    return adapter.texts()


async def test_a_thread_whose_worker_stops_mid_turn_is_answered_by_another_at_once(
    any_redis: RedisClient, emulator: Any, new_core: NewCore
) -> None:
    stopping, other, adapter = bridges(new_core, any_redis)
    await stop_mid_turn(stopping, emulator, "are you there?")
    assert await answered_by(other, adapter) == ["You said: are you there?"]


async def test_a_handed_back_thread_that_reaches_the_stopping_workers_last_read_goes_on(
    any_redis: RedisClient, emulator: Any, new_core: NewCore
) -> None:
    stopping, other, adapter = bridges(new_core, any_redis)
    queue, threads = stopping.store.queue, stopping.store.threads
    hand_back = threads.hand_back
    taken: list[str] = []

    async def into_the_stopping_read(hold: Hold) -> None:
        await hand_back(hold)
        # As Redis does when it has not yet seen the cancelled blocking read's connection
        # close: the new entry is delivered to that read, i.e. to the stopping worker.
        taken.extend(entry_id for entry_id, _ in await queue.read("stopping", ">", 10, None))

    threads.hand_back = into_the_stopping_read  # type: ignore[method-assign]
    await stop_mid_turn(stopping, emulator, "still there?")
    assert len(taken) == 1
    assert await answered_by(other, adapter) == ["You said: still there?"]
