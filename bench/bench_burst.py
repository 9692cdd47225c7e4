"""Slack Events API ack latency under a burst: N signed first posts POSTed at once.

Run: flock /tmp/engage-cpu.lock timeout 1200 .venv/bin/python -m bench.bench_burst
  [--events 1000] [--setups all1,split,all3] [--repeat 3] [--profile DIR]

Setups: `all1` one process with every role; `split` one `http` process and one `workers`
process; `all3` three processes with every role (POSTs round robin). Redis is a real
redis-server (AOF, fsync always), the emulator has its own process, the lean fake Slack and
the driver (aiohttp, bodies signed before the clock starts) share the benchmark process.
Per run: 200s, ack p50/p99/max (POST sent -> 200 read), burst wall time, how long until every
event was answered, and CPU seconds per component during the burst. `--profile DIR` runs the
bridge processes under cProfile (one .prof per process, written at SIGTERM): slower, for
finding where the time goes, not for figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import harness, lean_slack
from bench.bench_throughput import signed_post
from bench.chaos_check import percentile
from bench.chaos_fleet import ROOT, Fleet
from bench.cpu_account import CpuAccount, CpuUse

# setup -> the roles of each of its processes (JSON for pydantic-settings); ingress goes to
# the processes that have the `http` role.
SETUPS: dict[str, list[str]] = {
    "all1": ['["http","listeners","workers"]'],
    "split": ['["http","listeners"]', '["workers"]'],
    "all3": ['["http","listeners","workers"]'] * 3,
}
BURST_HEADER = (
    "| setup | events | 200s | ack p50 | ack p99 | ack max | burst wall | all answered "
    "| CPU s during burst |\n|---|---|---|---|---|---|---|---|---|"
)


@dataclass
class BurstResult:
    setup: str
    events: int
    ok: int
    acks: list[float]
    wall: float
    answered_after: float | None
    cpu: CpuUse

    def row(self) -> str:
        answered = f"{self.answered_after:.1f} s" if self.answered_after is not None else "—"
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in self.cpu.seconds.items())
        p50, p99 = percentile(self.acks, 0.5) * 1e3, percentile(self.acks, 0.99) * 1e3
        return (
            f"| {self.setup} | {self.events} | {self.ok} | {p50:.0f} ms | {p99:.0f} ms"
            f" | {max(self.acks) * 1e3:.0f} ms | {self.wall:.2f} s"
            f" ({self.events / self.wall:.0f}/s)"
            f" | {answered} | {cpu} |"
        )


class ProfiledFleet(Fleet):
    """Fleet whose processes run under cProfile when a directory is given."""

    def __init__(self, *args: object, profile_dir: Path | None = None, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.profile_dir = profile_dir

    def spawn(self, slot: int) -> None:
        if self.profile_dir is None:
            super().spawn(slot)
            return
        env = {
            **os.environ, **self.env, **self.per_slot[slot],
            "ENGAGE_BRIDGE_HTTP_PORT": str(self.ports[slot]), "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        out = self.profile_dir / f"bridge-{slot}.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "bench.bridge_process"]
        self.processes[slot] = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=self._logs[slot], cwd=self.workdir, env=env
        )
        self.starts += 1


async def burst(setup: str, events: int, run_id: int, profile: Path | None) -> BurstResult:
    answered = 0
    all_answered = asyncio.Event()

    def on_reply(thread_ts: str, arrived: float) -> None:
        nonlocal answered
        answered += 1
        if answered >= events:
            all_answered.set()

    async with harness.slack_bench("engage-burst-", lean_slack.LeanSlack(on_reply)) as bench:
        roles = SETUPS[setup]
        per_slot = [{"ENGAGE_BRIDGE_ROLES": r} for r in roles]
        env = bench.bridge_env("WARNING")
        fleet = ProfiledFleet(len(roles), env, bench.workdir, per_slot, profile_dir=profile)
        ingress = [fleet.url(slot) for slot, r in enumerate(roles) if '"http"' in r]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            await bench.emulator.ready()
            await fleet.start_all()
            assert bench.redis is not None
            account = CpuAccount(
                {
                    "bridge": [p.pid for p in fleet.processes if p is not None],
                    "emulator": [bench.emulator.process.pid],
                    "redis": [bench.redis.process.pid] if bench.redis.process else [],
                    "driver": [os.getpid()],
                }
            )
            posts = [signed_post(n, run_id) for n in range(events)]

            async def post(n: int) -> tuple[int, float]:
                _, raw, headers = posts[n]
                started = time.perf_counter()
                url = f"{ingress[n % len(ingress)]}/slack/events"
                async with session.post(url, data=raw, headers=headers) as response:
                    await response.read()
                    return response.status, time.perf_counter() - started

            before = account.snapshot()
            started = time.perf_counter()
            results = await asyncio.gather(*(post(n) for n in range(events)))
            wall = time.perf_counter() - started
            cpu = CpuUse.between(before, account.snapshot())
            try:
                await asyncio.wait_for(all_answered.wait(), timeout=300)
                answered_after: float | None = time.perf_counter() - started
            except TimeoutError:
                answered_after = None
            acks = [seconds for status, seconds in results if status == 200]
            return BurstResult(setup, events, len(acks), acks, wall, answered_after, cpu)
        finally:
            await session.close()
            fleet.stop()


async def main(args: argparse.Namespace) -> None:
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {args.events} events per burst")
    print(BURST_HEADER)
    profile = Path(args.profile) if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[BurstResult]] = {}
    run_id = int(time.time()) % 1000
    for repeat in range(args.repeat):
        for setup in args.setups.split(","):
            run_id += 1
            if profile is not None:
                profile_run = profile / f"{setup}-{repeat}"
                profile_run.mkdir(exist_ok=True)
            result = await burst(setup, args.events, run_id, profile_run if profile else None)
            results.setdefault(setup, []).append(result)
            print(result.row(), flush=True)
    if args.repeat > 1:
        print("\nspread over runs (min-max):")
        for setup, runs in results.items():
            p50 = [percentile(r.acks, 0.5) * 1e3 for r in runs]
            p99 = [percentile(r.acks, 0.99) * 1e3 for r in runs]
            top = [max(r.acks) * 1e3 for r in runs]
            print(f"{setup}: p50 {min(p50):.0f}-{max(p50):.0f} ms, p99 {min(p99):.0f}-"
                  f"{max(p99):.0f} ms, max {min(top):.0f}-{max(top):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--setups", default="all1,split,all3")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="")
    harness.run(main(parser.parse_args()))
