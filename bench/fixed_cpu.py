"""Fixed CPU: what a process spends per second idle, on its first turns and at a trickle.

Run: flock /tmp/engage-bench.lock timeout 600 .venv/bin/python -m bench.fixed_cpu
  [--targets reference,bridge] [--idle 10] [--rates 5,20]

The same fakes and targets as bench/bench_inflight.py (one bridge process with default settings
on its own redis-server, or bench/reference_bot.py). Per target, in this order: CPU per second
idle right after /readyz answered (start-up's tail), the first turn alone, the next 19 one after
another (warm-up), CPU per second idle after them, then for each rate R an open loop of R new
threads per second for `--seconds` (agent 1 s) and the CPU per second and per turn over it. A
fixed cost per second (timers, block timeouts, heartbeats, GC) shows as the idle rows; it is
spread over the turns a scenario completes per second, so it weighs more at 200/50 (~45 turns/s)
than at 600/200 (~130).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis

from bench import harness, lean_slack
from bench.bench_inflight import running
from bench.bench_throughput import signed_post
from bench.cpu_account import CLOCK_TICKS, process_cpu_seconds

_SENT_BY_CLIENTS = ("evalsha", "xreadgroup", "exec", "xautoclaim")


async def measure(target: str, args: argparse.Namespace, run_id: int) -> list[str]:
    replies: dict[str, asyncio.Future[float]] = {}

    def note(thread_ts: str, at: float) -> None:
        future = replies.get(thread_ts)
        if future is not None and not future.done():
            future.set_result(at)

    slack = lean_slack.LeanSlack(note)
    lines: list[str] = []
    n = 0
    async with running("engage-fixedcpu-", target, slack, args, args.delay) as on:
        process, url, session, redis = on.process, on.url, on.session, on.bench.redis
        loop = asyncio.get_running_loop()

        def cpu() -> float:
            return process_cpu_seconds(process.pid)

        def profile(pid: int, phase: str) -> subprocess.Popen[bytes] | None:
            if args.strace:  # syscalls by kind: how many writes, reads and sleeps a turn makes
                out = f"{args.strace}.{target}.{phase}.txt"
                return subprocess.Popen(
                    ["strace", *os.environ.get("STRACE_ARGS", "-c").split(), "-f", "-o", out,
                     "-p", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            if not args.profile or target != "bridge":
                return None
            return harness.py_spy(pid, f"{args.profile}.{phase}.raw")

        def counters() -> tuple[float, float, int]:
            """(utime, stime, voluntary context switches): the last counts the loop's sleeps."""
            stat = Path(f"/proc/{process.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            status = Path(f"/proc/{process.pid}/status").read_text()
            found = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
            assert found is not None
            return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS, int(found[1])

        async def commands() -> Counter[str]:
            """Redis commands served so far, by name (the bridge's Redis only)."""
            if redis is None:
                return Counter()
            async with aioredis.Redis.from_url(redis.url) as client:
                stats = await client.info("commandstats")
            return Counter({name[8:]: int(v["calls"]) for name, v in stats.items()})

        async def split(before: tuple[float, float, int], sent: Counter[str], turns: int) -> str:
            after = counters()
            user, system, sleeps = (a - b for a, b in zip(after, before, strict=True))
            served = await commands()
            served.subtract(sent)
            # Commands scripts run count too: only those a client sends are shown.
            top = ", ".join(f"{name} {served[name] / turns:.2f}" for name in _SENT_BY_CLIENTS)
            return (
                f" [user {user * 1e3 / turns:.2f} sys {system * 1e3 / turns:.2f} ms, "
                f"{sleeps / turns:.1f} sleeps per turn; Redis per turn: {top}]"
            )

        async def turn() -> None:
            nonlocal n
            ts, raw, headers = signed_post(n, run_id)
            n += 1
            replies[ts] = loop.create_future()
            async with session.post(url, data=raw, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            await asyncio.wait_for(replies[ts], 60)

        def on_cpu() -> float:
            """Seconds on a CPU of all its threads (the scheduler's ns, not 10 ms ticks)."""
            return (
                sum(
                    int(task.joinpath("schedstat").read_text().split()[0])
                    for task in Path(f"/proc/{process.pid}/task").iterdir()
                )
                / 1e9
            )

        async def idle(label: str) -> None:
            before, started = on_cpu(), time.perf_counter()
            await asyncio.sleep(args.idle)
            spent = on_cpu() - before
            lines.append(f"{label}: {spent * 1e3 / (time.perf_counter() - started):.2f} ms/s")

        await idle("idle after /readyz")
        before = cpu()
        await turn()
        lines.append(f"first turn: {(cpu() - before) * 1e3:.1f} ms")
        spy = profile(process.pid, "sequential")
        before, marks, sent = cpu(), counters(), await commands()
        for _ in range(args.sequential - 1):
            await turn()
        harness.stop_spy(spy)
        lines.append(
            f"turns 2-{args.sequential}, one at a time: "
            f"{(cpu() - before) * 1e3 / (args.sequential - 1):.2f} ms/turn"
            + await split(marks, sent, args.sequential - 1)
        )
        await idle("idle after them")
        for rate in (float(r) for r in args.rates.split(",")):
            count = int(rate * args.seconds)
            spy = profile(process.pid, f"rate{rate:g}")
            before, started, marks = cpu(), time.perf_counter(), counters()
            sent = await commands()
            tasks = []
            for i in range(count):
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(turn()))
            await asyncio.gather(*tasks)
            spent, elapsed = cpu() - before, time.perf_counter() - started
            harness.stop_spy(spy)
            lines.append(
                f"{rate:g} turns/s open loop: {spent * 1e3 / elapsed:.1f} ms/s, "
                f"{spent * 1e3 / count:.2f} ms/turn ({count} turns, {elapsed:.1f} s)"
                + await split(marks, sent, count)
            )
        await idle("idle after the trickles")
        return lines


async def main(args: argparse.Namespace) -> None:
    for run_id, target in enumerate(args.targets.split(","), start=900):
        for line in await measure(target, args, run_id):
            print(f"{target:9s} {line}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", default="reference,bridge")
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--rates", default="5,20")
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--worker-concurrency", type=int, default=0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--strace", help="strace -c of the bridge: PREFIX.phase.txt")
    parser.add_argument(
        "--profile", help="py-spy raw stacks of the bridge per phase: PREFIX.phase.raw"
    )
    # What bench_inflight.start_target reads: more env for the bridge, and target bridge-b
    # (another checkout and/or env) for A B in one invocation.
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--root-b", default="", help="the checkout bridge-b runs")
    parser.add_argument("--env-b", action="append", default=[], metavar="NAME=VALUE")
    parser.set_defaults(trace=None)
    harness.run(main(parser.parse_args()))
