"""The core's CPU per turn alone, by component: no platform, the agent in another process.

Run: .venv/bin/python -m bench.core_cpu [--threads 200] [--follow-ups 2] [--profile]

The emulator (`parrot`, no delay) runs in its own process; the core runs here with a recording
adapter (status + post), a real redis-server, and the Redis and Engage clients the runtime
builds, on uvloop. CPU per turn is this process's utime+stime over the turns ÷ turns (ingress
`submit` included, platform SDKs and HTTP server excluded: see bench_inflight for the whole path).
`--profile PATH` records py-spy raw stacks of this process to PATH (read them with
`python -m bench.profile_parts PATH`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.chaos_fleet import Emulator
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID
from bridge.engage.client import EngageClient
from bridge.eventloop import run as run_loop
from bridge.redisconn import connect_redis, redis_limits
from tests.fixtures_core import RecordingAdapter, core_settings, make_bridge, message, thread_key
from tests.redis_server import RedisServer


async def turns(args: argparse.Namespace, emulator_url: str, redis_url: str) -> tuple[int, float]:
    settings = core_settings(
        worker_block_seconds=0.05, worker_concurrency=2000, lease_seconds=30, claim_idle_seconds=60
    )
    # The client the runtime builds (bridge.runtime): its pool, timeouts and auto-pipelining.
    redis = connect_redis(redis_url, cluster=False, limits=redis_limits(settings))
    engage = EngageClient.from_settings(
        settings, base_url=emulator_url, api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID
    )
    adapter = RecordingAdapter()
    bridge = make_bridge(redis, engage, adapter, settings)
    threads = [thread_key(f"cpu{n}") for n in range(args.threads)]
    workers = asyncio.create_task(bridge.run_workers())
    spy = None
    if args.profile:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
             "--format", "raw", "--rate", "200", "-o", args.profile, "--pid", str(os.getpid())],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1)  # py-spy attaches
    started = resource.getrusage(resource.RUSAGE_SELF)
    try:
        for round_ in range(1 + args.follow_ups):
            expected = len(adapter.sent) + len(threads)
            for thread in threads:
                await bridge.submit(message(thread, f"round {round_}"))
            async with asyncio.timeout(120):
                while len(adapter.sent) < expected:
                    await asyncio.sleep(0.005)
    finally:
        ended = resource.getrusage(resource.RUSAGE_SELF)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        workers.cancel()
        await asyncio.gather(workers, return_exceptions=True)
        await engage.aclose()
        await redis.aclose()
    cpu = (ended.ru_utime - started.ru_utime) + (ended.ru_stime - started.ru_stime)
    count = len(threads) * (1 + args.follow_ups)
    return count, cpu


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        emulator = Emulator(Path(workdir))
        server = RedisServer()
        server.start()
        try:
            await emulator.ready()
            count, cpu = await turns(args, emulator.url, server.url)
        finally:
            emulator.stop()
            server.close()
    print(f"{count} turns, core CPU per turn {cpu / count * 1000:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--follow-ups", type=int, default=2)
    parser.add_argument("--profile", metavar="PATH", help="py-spy raw stacks of this process")
    args = parser.parse_args()
    run_loop(main(args), use_uvloop=os.environ.get("UVLOOP", "1") == "1")
