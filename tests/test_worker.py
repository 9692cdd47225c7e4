"""Workers against real Redis and the emulator: order, parallelism, coalescing, crash takeover."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.engage.client import EngageClient
from bridge.models import Standing
from bridge.store import keys
from bridge.worker import START_WHILE_IN_FLIGHT, parse_autoclaim
from tests.fixtures_core import (
    RecordingAdapter,
    core_settings,
    make_bridge,
    message,
    posts,
    running,
    thread_key,
    wait_until,
)
from tests.fixtures_emulator import hold_answers, release_answers
from tests.redis_server import RedisServer


def user_history(emulator: Any, cid: str) -> list[str]:
    return [m.content for m in emulator.state.messages(cid) if m.role == "user"]


class GatedEngage:
    """The real client, but each chat waits until `width` chats are in flight at once: threads
    that ran one after another would never open the gate (the test fails on its timeout)."""

    def __init__(self, inner: EngageClient, width: int) -> None:
        self._inner = inner
        self._width = width
        self._in_flight = 0
        self.peak = 0
        self._open = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def chat_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self._in_flight += 1
        self.peak = max(self.peak, self._in_flight)
        if self._in_flight >= self._width:
            self._open.set()
        try:
            await self._open.wait()
            async for item in self._inner.chat_stream(*args, **kwargs):
                yield item
        finally:
            self._in_flight -= 1


async def test_threads_run_in_parallel_and_each_keeps_its_order(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    engage = GatedEngage(engage_client, width=10)
    bridge = make_bridge(redis_client, engage, adapter)
    threads = [thread_key(n) for n in range(10)]
    for t in threads:
        await bridge.submit(message(t, f"{t.thread}-first"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 10, timeout=20)
        for t in threads:
            await bridge.submit(message(t, f"{t.thread}-second"))
        await wait_until(lambda: len(adapter.sent) == 20, timeout=20)
    assert engage.peak == 10
    for t in threads:
        assert adapter.texts(t) == [f"You said: {t.thread}-first", f"You said: {t.thread}-second"]


async def test_messages_sent_during_a_turn_are_coalesced_into_one_chat(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    hold_answers(emulator)
    thread = thread_key("co")
    async with running(bridge):
        await bridge.submit(message(thread, "one"))
        await wait_until(lambda: emulator.faults.answers_held == 1)
        for text in ("two", "three", "four"):  # all arrive while the first turn runs
            await bridge.submit(message(thread, text))
        release_answers(emulator)
        await wait_until(lambda: len(adapter.sent) == 2, timeout=10)
    assert adapter.texts() == ["You said: one", "You said: two\nthree\nfour"]
    assert len(emulator.state.runs) == 2
    record = adapter.sent[0].conversation_id
    assert record is not None
    assert user_history(emulator, record) == ["one", "two", "three", "four"]


async def test_autoclaim_reply_shapes_of_redis_6_and_7_are_both_read() -> None:
    entry = (b"1-0", {b"thread": b"console:W1:C1:t1"})
    assert parse_autoclaim([b"0-0", [entry]]) == ("0-0", [("1-0", "console:W1:C1:t1")])
    assert parse_autoclaim([b"0-0", [entry], [b"2-0"]])[1] == [("1-0", "console:W1:C1:t1")]
    assert parse_autoclaim([b"0-0", [(None, None)], []])[1] == []


async def test_workers_share_threads_through_a_redis_cluster(
    redis_cluster_client: Any, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridges = [
        make_bridge(redis_cluster_client, engage_client, adapter, consumer=f"c{i}")
        for i in range(2)
    ]
    threads = [thread_key(f"cl{n}") for n in range(6)]
    async with running(*bridges):
        for i, t in enumerate(threads):
            await bridges[i % 2].submit(message(t, "a"))
            await bridges[i % 2].submit(message(t, "b"))
        await wait_until(lambda: sum("b" in r.text for r in adapter.sent) == 6, timeout=20)
    for t in threads:
        assert (await bridges[0].threads.get(t)) is not None


def spawn_worker(redis_url: str, emulator: Any, name: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tests.worker_process",
            "--redis-url", redis_url,
            "--engage-url", emulator.url,
            "--consumer", name,
            "--lease-seconds", "1",
            "--claim-idle-seconds", "2",
        ],
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


@pytest.mark.slow
async def test_a_worker_killed_mid_turn_is_taken_over_and_every_message_answered_once(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    submitter = make_bridge(redis_client, engage_client, RecordingAdapter())
    hold_answers(emulator)  # the victim's agents work (inputs stored, runs started) until killed
    victim = spawn_worker(redis_server.url, emulator, "victim")
    processes.append(victim)
    threads = [thread_key(f"k{n}") for n in range(3)]
    for t in threads:
        await submitter.submit(message(t, f"{t.thread} first"))
    await wait_until(lambda: emulator.faults.answers_held == 3, timeout=15)
    for t in threads:  # arrive mid-turn: wait in the inbox behind the running turn
        await submitter.submit(message(t, f"{t.thread} second"))
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert await posts(redis_client) == []
    release_answers(emulator, held=3)  # the dead worker's runs answer into the history
    processes.append(spawn_worker(redis_server.url, emulator, "rescuer"))

    async def all_answered() -> bool:
        return len(await posts(redis_client)) >= 6

    async def all_committed() -> bool:
        # Nothing scheduled and no lease: no turn is left that could post anything again.
        scheduled = await redis_client.xlen(keys.READY_STREAM)
        return scheduled == 0 and not await redis_client.exists(*map(keys.lease, threads))

    await wait_until(all_answered, timeout=30)
    await wait_until(all_committed, timeout=10)
    posted = await posts(redis_client)
    assert len(posted) == 6
    assert len({p["key"] for p in posted}) == 6
    for t in threads:
        record = await submitter.threads.get(t)
        assert record is not None
        mine = [p["text"] for p in posted if p["thread"] == str(t)]
        assert mine[-1].endswith(f"{t.thread} second")
        assert user_history(emulator, record.conversation_id) == [
            f"{t.thread} first",
            f"{t.thread} second",
        ]


async def blocked_clients(redis: aioredis.Redis) -> bool:
    return int((await redis.info("clients"))["blocked_clients"]) >= 1


async def stops_within(task: asyncio.Task[None], seconds: float) -> None:
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=seconds)
    assert done, "the workers did not stop after being cancelled"
    assert task.cancelled()


async def test_workers_blocked_in_xreadgroup_stop_when_cancelled(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=30)
    bridge = make_bridge(client, None, RecordingAdapter(), core_settings(worker_block_seconds=20))
    task = asyncio.create_task(bridge.run_workers())
    await wait_until(lambda: blocked_clients(redis_client))
    await stops_within(task, 5)
    await client.aclose()


async def test_workers_stop_when_cancelled_while_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer()
    server.start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=30, socket_connect_timeout=5)
    try:
        bridge = make_bridge(client, None, RecordingAdapter())
        task = asyncio.create_task(bridge.run_workers())
        probe = aioredis.Redis.from_url(server.url)
        await wait_until(lambda: blocked_clients(probe))
        await probe.aclose()
        server.stop()
        await wait_until(lambda: "Redis unavailable" in caplog.text)
        await stops_within(task, 5)
    finally:
        await client.aclose()
        server.close()


async def test_a_cancel_racing_a_command_send_still_stops_the_workers(
    redis_server: RedisServer,
) -> None:
    # redis-py sends through asyncio.wait_for when a socket timeout is set; on Python 3.11 a
    # cancel that lands as the send completes is swallowed. Many cancels at arbitrary moments
    # of a busy loop (1 ms blocking reads) hit that window.
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=30)
    settings = core_settings(worker_block_seconds=0.001)
    bridge = make_bridge(client, None, RecordingAdapter(), settings)
    rng = random.Random(7)
    try:
        for _ in range(150):
            task = asyncio.create_task(bridge.run_workers())
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            await stops_within(task, 5)
    finally:
        await client.aclose()


async def test_a_thread_with_more_work_goes_back_in_line_when_every_slot_is_taken(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter, core_settings(worker_concurrency=1))
    t0, t1, t2 = (thread_key(f"fair{n}") for n in range(3))
    # Commands are one step each: t0's later two are separate turns, queued after t1's and t2's.
    for thread in (t0, t1, t2, t0, t0):
        await bridge.submit(message(thread, "status"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 5)
    assert [reply.thread for reply in adapter.sent] == [t0, t1, t2, t0, t0]


async def test_a_holder_that_loses_its_lease_mid_turn_stops_and_the_answer_comes_once(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    hold_answers(emulator)
    thread = thread_key("stolen")
    await bridge.submit(message(thread, "who holds me?"))
    async with running(bridge):
        await wait_until(lambda: emulator.faults.answers_held == 1)  # the agent is at work
        # Another worker's lease, as if this one had stalled past its expiry.
        await redis_client.set(keys.lease(thread), "someone-else", px=1500)
        await wait_until(lambda: "turn stopped" in caplog.text)
        release_answers(emulator)
        await wait_until(lambda: len(adapter.sent) == 1, timeout=20)
    assert adapter.texts() == ["You said: who holds me?"]
    assert "LeaseLost" in caplog.text


async def test_a_turn_longer_than_its_lease_keeps_it_by_heartbeats(
    redis_client: aioredis.Redis,
    emulator: Any,
    engage_client: EngageClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)  # 1 s lease
    hold_answers(emulator)
    thread = thread_key("long-turn")
    await bridge.submit(message(thread, "take your time"))
    async with running(bridge):
        await wait_until(lambda: emulator.faults.answers_held == 1)  # the agent is at work
        renewals, last = 0, await redis_client.pttl(keys.lease(thread))

        async def renewed_three_times() -> bool:  # held for a whole lease and more
            nonlocal renewals, last
            now = await redis_client.pttl(keys.lease(thread))
            renewals, last = renewals + (now > last), now
            return renewals >= 3

        await wait_until(renewed_three_times)
        release_answers(emulator)
        await wait_until(lambda: len(adapter.sent) == 1)
    assert adapter.texts() == ["You said: take your time"]
    assert "turn stopped" not in caplog.text
    assert "taking over" not in caplog.text


async def test_a_read_entrys_turn_sends_its_begin_in_the_step_that_read_it(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    """Started eagerly: the turn's BEGIN leaves before the loop's next iteration (a callback
    queued when the read returned still waits), not a whole iteration (all ready work) later."""
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    bridge.inbox.starts = None  # every turn read from the stream (an accept starts none)
    workers, threads = bridge.workers, bridge.store.threads
    read, begin = workers._read, threads.begin
    reading_step = False
    begins_in_reading_step: list[bool] = []

    def next_iteration() -> None:
        nonlocal reading_step
        reading_step = False

    async def traced_read(*args: Any) -> Any:
        nonlocal reading_step
        entries = await read(*args)
        if entries:
            reading_step = True
            asyncio.get_running_loop().call_soon(next_iteration)
        return entries

    async def traced_begin(hold: Any, ms: int, *, acquire: bool) -> Any:
        if acquire:
            begins_in_reading_step.append(reading_step)
        return await begin(hold, ms, acquire=acquire)

    workers._read = traced_read  # type: ignore[method-assign]
    threads.begin = traced_begin  # type: ignore[method-assign]
    async with running(bridge):
        for n in range(3):
            await bridge.submit(message(thread_key(f"eager{n}"), "hi"))
            await wait_until(lambda n=n: len(adapter.sent) == n + 1)  # type: ignore[misc]
    assert begins_in_reading_step == [True, True, True]


async def test_an_accept_for_an_idle_thread_starts_its_turn_here_without_a_read_or_begin(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    bridge = make_bridge(redis_client, engage_client, adapter)
    workers, threads = bridge.workers, bridge.store.threads
    read, begin = workers._read, threads.begin
    entries_read: list[str] = []
    acquired: list[str] = []

    async def traced_read(*args: Any) -> Any:
        entries = await read(*args)
        entries_read.extend(t for _, t in entries)
        return entries

    async def traced_begin(hold: Any, ms: int, *, acquire: bool) -> Any:
        if acquire:
            acquired.append(str(hold.thread))
        return await begin(hold, ms, acquire=acquire)

    workers._read = traced_read  # type: ignore[method-assign]
    threads.begin = traced_begin  # type: ignore[method-assign]
    async with running(bridge):
        await wait_until(lambda: blocked_clients(redis_client))
        for n in range(3):
            await bridge.submit(message(thread_key(f"fast{n}"), f"hi {n}"))
            await wait_until(lambda n=n: len(adapter.sent) == n + 1)  # type: ignore[misc]
    assert adapter.texts() == [f"You said: hi {n}" for n in range(3)]
    assert (entries_read, acquired) == ([], [])
    assert await redis_client.xlen(keys.READY_STREAM) == 0


async def test_a_turn_started_by_an_accept_whose_process_died_is_taken_over_once(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    """The accepting process dies right after ACCEPT_START (the lease and the entry are its):
    the lease runs out, the entry is claimed, the message is answered once."""
    adapter = RecordingAdapter()
    settings = core_settings(lease_seconds=0.5, claim_idle_seconds=1.0)
    rescuer = make_bridge(redis_client, engage_client, adapter, settings)
    thread = thread_key("orphan")
    await rescuer.workers.ensure_group()
    accepted = await rescuer.store.queue.accept_start(
        message(thread, "are you there"),
        frozenset(Standing),
        consumer="dead",
        token="dead-token",
        lease_ms=500,
    )
    assert accepted.begun is not None
    async with running(rescuer):
        await wait_until(lambda: len(adapter.sent) == 1, timeout=15)

        async def all_done() -> bool:
            scheduled = await redis_client.xlen(keys.READY_STREAM)
            return scheduled == 0 and not await redis_client.exists(keys.lease(thread))

        await wait_until(all_done, timeout=10)
    assert adapter.texts() == ["You said: are you there"]


async def test_a_turn_an_accept_started_after_the_workers_stopped_is_handed_back(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    """The accept's reply comes back once the workers no longer run: the lease is released and
    the thread scheduled again at once (another process takes it), the entry acknowledged."""
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    workers = bridge.workers
    workers._running = True  # the reservation was made while the workers still ran
    assert workers.reserve()
    workers._running = False
    thread = thread_key("late")
    await workers.ensure_group()
    accepted = await bridge.store.queue.accept_start(
        message(thread, "hi"),
        frozenset(Standing),
        consumer=workers.consumer,
        token="late-token",
        lease_ms=workers.lease_ms,
    )
    assert accepted.begun is not None
    workers.take(accepted, "late-token", thread)

    async def handed_back() -> bool:
        return not await redis_client.exists(keys.lease(thread))

    await wait_until(handed_back)
    await wait_until(lambda: not workers._in_flight)
    entries = await bridge.store.queue.read("other", ">", 10, None)
    assert [t for _, t in entries] == [str(thread)]
    raw: Any = await redis_client.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min="-", max="+", count=10
    )
    assert [p["consumer"] for p in raw] == [b"other"]


async def test_an_accept_that_failed_on_a_reserved_slot_leaves_the_strays_to_the_claim(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    """An accept whose reply never came (a timeout, a cancel) may have started a turn here: at
    stop its entry, newer than the stream's mark, is not scheduled again while its lease is ours
    (the new entry's BEGIN would find the lease held and drop it); the claim takes it later."""
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    workers = bridge.workers
    await workers.ensure_group()
    mark = await bridge.store.queue.last_id()
    workers._running = True
    assert workers.reserve()
    accepted = await bridge.store.queue.accept_start(
        message(thread_key("unknown"), "hi"),
        frozenset(Standing),
        consumer=workers.consumer,
        token="reply-lost",
        lease_ms=workers.lease_ms,
    )
    workers.unreserve()  # as after the accept raised
    workers._running = False
    await workers._reschedule_strays(mark)
    raw: Any = await redis_client.xpending_range(
        keys.READY_STREAM, keys.WORKER_GROUP, min="-", max="+", count=10
    )
    assert [p["message_id"].decode() for p in raw] == [accepted.entry_id]
    assert await redis_client.xlen(keys.READY_STREAM) == 1


async def test_an_accept_starts_no_turn_while_other_requests_crowd_the_process(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    """Beyond a few requests in flight the turn waits for the worker's read (behind the acks)."""
    bridge = make_bridge(redis_client, engage_client, RecordingAdapter())
    workers, admission = bridge.workers, bridge.admission
    workers._running = True
    requests = [admission.enter() for _ in range(START_WHILE_IN_FLIGHT)]
    assert workers.reserve()
    workers.unreserve()
    requests.append(admission.enter())
    assert not workers.reserve()
    for key in requests:
        admission.leave(key)
    assert workers.reserve()
