"""Scale benchmarks: Redis cost of the thread map (1k-100k), Slack ack latency under a burst,
throughput with 1 and 3 worker processes with the emulator in processes of its own.

Run: .venv/bin/python -m bench.bench_scale [--only map,burst,throughput]
Loopback only; a real redis-server (AOF, fsync always) per section. The throughput section here
is a workers-only drain of pre-stored messages; the 1-vs-3-process figure in BENCHMARKS.md comes
from bench/bench_throughput.py (Slack ingress, closed loop, CPU per component).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from bench.bench_burst import BURST_HEADER, burst
from bench.chaos_check import percentile
from bench.chaos_fleet import ROOT, Emulator
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID
from bridge.threadmap import ThreadMap, ThreadRecord
from tests.fixtures_core import RedisRecordingAdapter, make_bridge, message, thread_key, wait_until
from tests.redis_server import RedisServer


def record(n: int) -> ThreadRecord:
    now = datetime.now(UTC).isoformat()
    key = f"slack:T0123ABCD:C0456EFGH:17123{n:05d}.{n % 999999:06d}"
    return ThreadRecord(
        thread_key=key, conversation_id=f"01a21bd2-{n:04x}-7000-b83d-1ee5d659bbbb"[:36],
        agent="pensions-questions-latest", source="slack", created=now, updated=now,
        last_message_id=f"C0456EFGH:17123{n:05d}.000100", history_mark=f"msg-{n:08d}-0000",
    )  # fmt: skip


async def timed(samples: list[float], coro: object) -> None:
    started = time.perf_counter()
    await coro  # type: ignore[misc]
    samples.append(time.perf_counter() - started)


async def thread_map_cost(sizes: list[int]) -> None:
    server = RedisServer()
    server.start()
    redis = aioredis.Redis.from_url(server.url, max_connections=1000)
    threads = ThreadMap(redis, idle_ttl_seconds=30 * 24 * 3600)
    try:
        base = (await redis.info("memory"))["used_memory"]
        print("| mapped threads | used_memory delta | per mapping | MEMORY USAGE of one | "
              "put p50/p99 | get p50/p99 |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        written = 0
        for size in sizes:
            for chunk in range(written, size, 200):
                await asyncio.gather(
                    *(threads.put(record(n)) for n in range(chunk, min(size, chunk + 200)))
                )
            written = size
            used = (await redis.info("memory"))["used_memory"] - base
            one = await redis.memory_usage(f"{{{record(0).thread_key}}}:conv") or 0
            rng = random.Random(size)
            puts: list[float] = []
            gets: list[float] = []
            for _ in range(1000):  # sequential: latency, not throughput
                n = rng.randrange(size)
                await timed(puts, threads.put(record(n)))
                await timed(gets, threads.get(record(n).thread_key))
            print(
                f"| {size:,} | {used / 1e6:.1f} MB | {used / size:.0f} B | {one} B | "
                f"{percentile(puts, 0.5) * 1e3:.2f}/{percentile(puts, 0.99) * 1e3:.2f} ms | "
                f"{percentile(gets, 0.5) * 1e3:.2f}/{percentile(gets, 0.99) * 1e3:.2f} ms |",
                flush=True,
            )
        keys_count = await redis.dbsize()
        assert keys_count == sizes[-1], f"expected {sizes[-1]} keys, found {keys_count}"
    finally:
        await redis.aclose()
        server.close()


def spawn_worker(redis_url: str, engage_url: str, name: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tests.worker_process", "--redis-url", redis_url,
            "--engage-url", engage_url, "--consumer", name, "--platform", "bench",
            "--lease-seconds", "10", "--claim-idle-seconds", "30", "--concurrency", "32",
        ],
        stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.readline()
    return process


async def throughput(procs: int, n: int, emulators: int) -> float:
    """New thread per message (create + chat + post); messages submitted before timing ends."""
    server = RedisServer()
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="engage-tput-"))
    emus = [Emulator(workdir) for _ in range(emulators)]
    redis = aioredis.Redis.from_url(server.url, max_connections=1000)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for emulator in emus:
            await emulator.ready()
        from bridge.engage.client import EngageClient

        engage = EngageClient(base_url=emus[0].url, api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID)
        submitter = make_bridge(redis, engage, RedisRecordingAdapter(redis, "bench"))
        msgs = [message(thread_key(i, "bench"), f"m{i}") for i in range(n)]
        # Stored before the workers start: the figure is the workers' rate, not the submitter's.
        for chunk in range(0, n, 100):
            await asyncio.gather(*(submitter.submit(m) for m in msgs[chunk : chunk + 100]))
        await engage.aclose()
        started = time.monotonic()
        # With one message per thread a thread never moves between workers, so each worker may
        # have an emulator of its own (its conversations live there).
        workers = [spawn_worker(server.url, emus[i % emulators].url, f"w{i}") for i in range(procs)]

        async def done() -> bool:
            return await redis.llen(RedisRecordingAdapter.POSTS) >= n

        await wait_until(done, timeout=600, interval=0.05)
        return n / (time.monotonic() - started)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        await redis.aclose()
        for emulator in emus:
            emulator.stop()
        server.close()


async def main(args: argparse.Namespace) -> None:
    only = set(args.only.split(","))
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    if "map" in only:
        print("\n## Redis cost of the thread map (ThreadMap.put, real record fields)")
        await thread_map_cost([1_000, 10_000, 100_000])
    if "burst" in only:
        print("\n## Slack Events API ack latency under a burst (all POSTs at once)")
        # One implementation: bench/bench_burst.py (also the 1 http + 1 workers split, repeats).
        print(BURST_HEADER)
        for setup in ("all1", "split", "all3"):
            print((await burst(setup, args.burst, run_id=1, profile=None)).row(), flush=True)
    if "throughput" in only:
        print("\n## Worker throughput, new thread per message, emulator(s) in own process(es)")
        for procs, emulators in ((1, 1), (3, 1), (3, 3)):
            rate = await throughput(procs, args.messages, emulators)
            print(f"{procs} worker process(es), {emulators} emulator process(es): "
                  f"{rate:.0f} messages/s", flush=True)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="map,burst,throughput")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1200)
    asyncio.run(main(parser.parse_args()))
