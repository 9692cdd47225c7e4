"""Bridge core benchmark: overhead per turn, throughput with 1 and 3 worker processes, Redis cost.

Run: .venv/bin/python -m bench.bench_core [--messages 300] [--threads 100] [--fsync everysec]
Real redis-server (AOF, fsync always) and the emulator (parrot, no agent delay) on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, ThreadedEmulator
from bridge.engage.client import EngageClient
from bridge.store import keys
from tests.fixtures_core import (
    RecordingAdapter,
    RedisRecordingAdapter,
    make_bridge,
    message,
    running,
    thread_key,
    wait_until,
)
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


class Samples:
    """Stands in for a histogram so every observation is kept for exact percentiles."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, value: float) -> None:
        self.values.append(value)

    def labels(self, *_: Any) -> Samples:
        return self


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def commandstats(redis: aioredis.Redis) -> tuple[int, dict[str, int]]:
    info = await redis.info("commandstats")
    per = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}
    return sum(per.values()), per


async def overhead_and_cost(
    redis: aioredis.Redis, emulator: ThreadedEmulator, n_threads: int, n_messages: int
) -> None:
    engage = EngageClient(base_url=emulator.url, api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID)
    adapter = RecordingAdapter(name="bench")
    bridge = make_bridge(redis, engage, adapter)
    overhead, turn = Samples(), Samples()
    bridge.metrics.overhead_seconds = overhead  # type: ignore[assignment]
    bridge.metrics.turn_seconds = turn  # type: ignore[assignment]
    await redis.flushall()
    threads = [thread_key(n, "bench") for n in range(n_threads)]
    per_thread = n_messages // n_threads
    await redis.config_resetstat()
    stats0 = await redis.info("stats")
    async with running(bridge):
        for round_ in range(per_thread):
            # One message per thread per round, each answered before the next: no coalescing.
            await asyncio.gather(*(bridge.submit(message(t, f"q{round_}")) for t in threads))
            target = (round_ + 1) * len(threads)
            await wait_until(lambda target=target: len(adapter.sent) >= target, timeout=120)
    total_msgs = per_thread * len(threads)
    calls, per = await commandstats(redis)
    stats1 = await redis.info("stats")
    net_in = stats1["total_net_input_bytes"] - stats0["total_net_input_bytes"]
    net_out = stats1["total_net_output_bytes"] - stats0["total_net_output_bytes"]
    sample = threads[0]
    thread_keys = [k async for k in redis.scan_iter(match=keys.tag(sample) + "*")]
    memory = sum([await redis.memory_usage(k) or 0 for k in thread_keys])
    seen_key = next(k for k in thread_keys if b":seen:" in k)
    seen_bytes = await redis.memory_usage(seen_key) or 0
    top = sorted(per.items(), key=lambda kv: -kv[1])[:8]
    print(f"## {n_threads} thread(s) x {per_thread} message(s), one worker process (in-process)")
    print(f"turns: {len(overhead.values)}")
    print(
        f"overhead p50 {pct(overhead.values, 0.5) * 1000:.2f} ms, "
        f"p99 {pct(overhead.values, 0.99) * 1000:.2f} ms, "
        f"mean {statistics.mean(overhead.values) * 1000:.2f} ms"
    )
    p50, p99 = pct(turn.values, 0.5) * 1000, pct(turn.values, 0.99) * 1000
    print(f"turn p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print("## Redis cost")
    print(f"commands per message: {calls / total_msgs:.1f} (top: {top})")
    print(
        f"network bytes per message: in {net_in / total_msgs:.0f}, out {net_out / total_msgs:.0f}"
    )
    print(
        f"memory per thread after {per_thread} messages: {memory} bytes in {len(thread_keys)} keys"
        f" (record+posted+seen claims); per message dedupe claim: {seen_bytes} bytes"
    )
    await engage.aclose()


def spawn(redis_url: str, emulator: ThreadedEmulator, name: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tests.worker_process",
            "--redis-url", redis_url, "--engage-url", emulator.url,
            "--consumer", name, "--platform", "bench",
            "--lease-seconds", "10", "--claim-idle-seconds", "30", "--concurrency", "32",
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.readline()
    return process


async def throughput(
    redis: aioredis.Redis, url: str, emulator: ThreadedEmulator, procs: int, n: int
) -> float:
    await redis.flushall()
    engage = EngageClient(base_url=emulator.url, api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID)
    submitter = make_bridge(redis, engage, RedisRecordingAdapter(redis, "bench"))
    workers = [spawn(url, emulator, f"bench-{procs}-{i}") for i in range(procs)]
    try:
        msgs = [message(thread_key(i, "bench"), f"m{i}") for i in range(n)]
        started = time.monotonic()
        for chunk in range(0, n, 50):
            await asyncio.gather(*(submitter.submit(m) for m in msgs[chunk : chunk + 50]))

        async def done() -> bool:
            return await redis.llen(RedisRecordingAdapter.POSTS) >= n

        await wait_until(done, timeout=300, interval=0.05)
        elapsed = time.monotonic() - started
    finally:
        for w in workers:
            w.kill()
            w.wait()
        await engage.aclose()
    return n / elapsed


async def main(args: Any) -> None:
    server = RedisServer("--appendfsync", args.fsync)
    server.start()
    emulator = ThreadedEmulator()
    emulator.start(timeout=10)
    redis = aioredis.Redis.from_url(server.url, max_connections=1000)
    try:
        print(f"redis: {server.url} (AOF, appendfsync {args.fsync}); emulator: {emulator.url}")
        await overhead_and_cost(redis, emulator, 1, 100)
        await overhead_and_cost(redis, emulator, args.threads, args.messages)
        print("## throughput (new thread per message: create + chat + post), parrot agent")
        for procs in (1, 3):
            emulator.state.reset()
            rate = await throughput(redis, server.url, emulator, procs, args.throughput_messages)
            print(f"{procs} worker process(es): {rate:.0f} messages/s")
    finally:
        await redis.aclose()
        emulator.stop()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--threads", type=int, default=100)
    parser.add_argument("--throughput-messages", type=int, default=600)
    parser.add_argument("--fsync", choices=["always", "everysec"], default="always")
    asyncio.run(main(parser.parse_args()))
