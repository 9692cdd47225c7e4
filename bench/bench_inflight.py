"""Turns in flight: engage-bridge (one process) side by side with bench/reference_bot.py.

Run: flock /tmp/engage-bench.lock timeout 1800 .venv/bin/python -m bench.bench_inflight
  [--scenarios 200x50@1.0,600x200@1.0] [--targets reference,bridge] [--repeat 1]
  [--targets reference,bridge,bridge-b --root-b CHECKOUT --env-b NAME=VALUE]  # A B in one run

A scenario `TxC@D` sends T new Slack threads (a signed first post mentioning the bot, Events API
over HTTP) with C users in a closed loop (each sends its next thread once the previous one was
answered) to an agent that takes D seconds. Both targets use the same fakes: the emulator in its
own process (agent `parrot` + D s delay) and a lean fake Slack in the driver that notes when each
thread's first status (assistant.threads.setStatus) and its answer (chat.postMessage) arrive.
Reported: turns/s over the run, first visible sign and reply latency from the POST, ack latency,
the target's CPU per turn (utime+stime from /proc, agent time is spent in the emulator), its
peak RSS and the Slack Web API calls it made per turn (auth.test at start not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench import harness, lean_slack
from bench.bench_throughput import signed_post
from bench.chaos_check import percentile
from bench.chaos_fleet import ROOT, Fleet, peak_rss_kib, wait_http
from bench.cpu_account import process_cpu_seconds
from bench.turn_trace import driver_line
from tests.redis_server import free_port

CHILDREN = harness.CHILDREN


@dataclass
class Result:
    target: str
    threads: int
    elapsed: float
    cpu_seconds: float
    peak_rss_mib: float
    signs: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    slack_calls: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        def ms(values: list[float], q: float) -> str:
            return f"{percentile(values, q) * 1e3:.0f}" if values else "-"

        return (
            f"{self.target:9s} {self.threads / self.elapsed:7.1f} turns/s | first sign p50 "
            f"{ms(self.signs, 0.5)} ms p99 {ms(self.signs, 0.99)} ms | reply p50 "
            f"{ms(self.replies, 0.5)} ms p99 {ms(self.replies, 0.99)} ms | ack p99 "
            f"{ms(self.acks, 0.99)} ms | CPU {self.cpu_seconds * 1e3 / self.threads:.2f} ms/turn"
            f" | peak RSS {self.peak_rss_mib:.0f} MiB | {len(self.replies)}/{self.threads} answered"
            f" | Slack calls/turn {self._per_turn()}"
        )

    def _per_turn(self) -> str:
        calls = {k: v for k, v in self.slack_calls.items() if k != "auth.test"}
        each = ", ".join(f"{k} {v / self.threads:.2f}" for k, v in sorted(calls.items()))
        return f"{sum(calls.values()) / self.threads:.2f} ({each})"


async def start_target(
    target: str, bench: harness.SlackBench, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], str, Fleet | None]:
    """The target's process and its Events API URL (and, for a bridge, its fleet of one)."""
    if target == "reference":
        port = free_port()
        log = open(bench.workdir / "reference.log", "ab")  # noqa: SIM115
        env = {**os.environ, "BENCH_TURN_TRACE": f"{args.trace}.reference"} if args.trace else None
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.reference_bot", "--port", str(port),
             "--slack-api", bench.slack.api_url, "--engage", bench.emulator.url],
            stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT, env=env,
        )  # fmt: skip
        CHILDREN.append(process)
        url = f"http://127.0.0.1:{port}"
        await wait_http(f"{url}/healthz", timeout=30)
        return process, f"{url}/slack/events", None
    env = bench.bridge_env(args.log_level)
    if args.worker_concurrency:
        env["ENGAGE_BRIDGE_WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    if args.trace:
        env["BENCH_TURN_TRACE"] = f"{args.trace}.{target}"
    env.update(dict(pair.split("=", 1) for pair in args.env))
    if target == "bridge-b":
        env.update(dict(pair.split("=", 1) for pair in args.env_b))
    fleet = Fleet(1, env, bench.workdir, [{}])
    if target == "bridge-b" and args.root_b:
        fleet.root = Path(args.root_b)
    await fleet.start_all()
    process = fleet.processes[0]
    assert process is not None
    CHILDREN.append(process)
    return process, f"{fleet.url(0)}/slack/events", fleet


@dataclass
class Running:
    bench: harness.SlackBench
    process: subprocess.Popen[bytes]
    url: str  # the target's Events API
    session: aiohttp.ClientSession  # the driver's


@asynccontextmanager
async def running(
    prefix: str,
    target: str,
    slack: lean_slack.LeanSlack,
    args: argparse.Namespace,
    agent_delay: float,
) -> AsyncIterator[Running]:
    """`target` started on fresh fakes (its own Redis for a bridge) whose agent takes
    `agent_delay` s, with the driver's session; all stopped after."""
    reference = target == "reference"
    async with harness.slack_bench(prefix, slack, with_redis=not reference) as bench:
        session = harness.driver_session()
        fleet: Fleet | None = None
        try:
            await bench.ready(agent_delay=agent_delay)
            process, url, fleet = await start_target(target, bench, args)
            yield Running(bench, process, url, session)
        finally:
            await session.close()
            if fleet is not None:
                fleet.stop()


async def run(target: str, threads: int, users: int, delay: float, args: argparse.Namespace,
              run_id: int) -> Result:  # fmt: skip
    signs: dict[str, asyncio.Future[float]] = {}
    replies: dict[str, asyncio.Future[float]] = {}

    def arrived(table: dict[str, asyncio.Future[float]]) -> lean_slack.Callback:
        def note(thread_ts: str, at: float) -> None:
            future = table.get(thread_ts)
            if future is not None and not future.done():
                future.set_result(at)

        return note

    slack = lean_slack.LeanSlack(arrived(replies), on_status=arrived(signs))
    async with running("engage-inflight-", target, slack, args, delay) as on:
        process, url, session = on.process, on.url, on.session
        posts = [signed_post(n, run_id) for n in range(threads)]
        loop = asyncio.get_running_loop()
        for ts, _, _ in posts:
            signs[ts] = loop.create_future()
            replies[ts] = loop.create_future()
        result = Result(target, threads, 0.0, 0.0, 0.0)
        todo = iter(posts)
        traced: list[str] = []

        async def user() -> None:
            for ts, raw, headers in todo:
                sent = time.perf_counter()
                async with session.post(url, data=raw, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                acked = time.perf_counter()
                result.acks.append(acked - sent)
                try:
                    answered = await asyncio.wait_for(asyncio.shield(replies[ts]), args.timeout)
                except TimeoutError:
                    continue
                result.replies.append(answered - sent)
                if signs[ts].done():
                    result.signs.append(signs[ts].result() - sent)
                if args.trace:
                    sign = signs[ts].result() if signs[ts].done() else None
                    traced.append(driver_line(ts, sent, acked, sign, answered))

        spy = None
        if args.profile and target.startswith("bridge"):
            # PATH.json: a timeline (speedscope, idle samples kept) for bench.burst_timeline
            timeline = args.profile.endswith(".json")
            form = ["speedscope", "--idle"] if timeline else ["raw"]
            form += ["--rate", str(args.profile_rate)]
            spy = harness.py_spy(process.pid, args.profile, *form)
            await asyncio.sleep(1.0)  # py-spy attaches before the first POST
        cpu_before = process_cpu_seconds(process.pid)
        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(users)))
        result.elapsed = time.perf_counter() - started
        result.cpu_seconds = process_cpu_seconds(process.pid) - cpu_before
        result.peak_rss_mib = peak_rss_kib(process.pid) / 1024
        result.slack_calls = dict(slack.calls)
        if args.trace:
            Path(f"{args.trace}.driver.{target}").write_text("".join(traced))
        harness.stop_spy(spy)
        if target == "reference":
            process.terminate()
            process.wait(timeout=10)
        return result


async def main(args: argparse.Namespace) -> None:
    print(f"{os.cpu_count()} CPUs; worker concurrency {args.worker_concurrency or 'default'}")
    run_id = 0
    for scenario in args.scenarios.split(","):
        shape, delay = scenario.split("@")
        threads, users = (int(v) for v in shape.split("x"))
        print(f"\n{threads} threads, {users} concurrent, agent {delay} s", flush=True)
        for _ in range(args.repeat):
            for target in args.targets.split(","):
                run_id += 1
                result = await run(target, threads, users, float(delay), args, run_id)
                print(result.line(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", default="200x50@1.0,600x200@1.0")
    parser.add_argument("--targets", default="reference,bridge")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--worker-concurrency", type=int, default=0)
    # The default settings log at INFO (two lines a turn); WARNING shows what logging costs.
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--trace", help="per-turn steps to PATH.* (read: python -m bench.turn_trace)"
    )
    parser.add_argument(
        "--profile",
        help="py-spy raw (collapsed) stacks of the bridge, to PATH (PATH.json: a timeline for "
        "bench.burst_timeline)",
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="for the bridge's process (both bridge targets)")  # fmt: skip
    # Target bridge-b: another checkout's code (run by this bench) and/or more env, so one
    # invocation can run A B A B: --targets reference,bridge,bridge-b --repeat 2
    parser.add_argument("--root-b", default="", help="the checkout bridge-b runs")
    parser.add_argument("--env-b", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    harness.run(main(parser.parse_args()))
