"""What one Slack ack costs the bridge process: a burst of signed first posts, CPU per ack.

Run: flock /tmp/engage-bench.lock .venv/bin/python -m bench.ack_cpu
  [--events 500] [--repeat 3] [--roles '["http","listeners"]'] [--env NAME=VALUE ...]
  [--floor]          # each round also against a null server: the driver's own floor
  [--profile PATH]   # py-spy raw per run, read with bench.profile_parts
  [--root-b CHECKOUT] [--env-b NAME=VALUE ...]   # A B A B in one invocation

One bridge process (default roles: HTTP ingress and listeners, no workers, so no turn competes
with the acks) on a real redis-server, the lean fake Slack and the driver in this process, the
emulator in its own. Each run: a fresh process, `--warm` requests first (the first burst of a
fresh process also pays Bolt's and the scripts' first use), then `--events` POSTs at once, each
on its own connection. Printed per run: ack p50/p99/max, the bridge's CPU (utime+stime) from
the first POST to the last ack per ack, and until every accept sign (setStatus) arrived per
event: the ack path's CPU and what the signs add.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench import harness, lean_slack
from bench.bench_throughput import signed_post
from bench.chaos_check import percentile
from bench.chaos_fleet import ROOT, Fleet
from bench.cpu_account import process_cpu_seconds
from tests.redis_server import free_port


async def burst(args: argparse.Namespace, run_id: int, root: str, extra: list[str]) -> str:
    signs = 0
    all_signed = asyncio.Event()

    def on_status(thread_ts: str, at: float) -> None:
        nonlocal signs
        signs += 1
        if signs >= args.events + args.warm:
            all_signed.set()

    slack = lean_slack.LeanSlack(lambda ts, at: None, on_status=on_status)
    async with harness.slack_bench("engage-ackcpu-", slack) as bench:
        env = {**bench.bridge_env("INFO"), "ENGAGE_BRIDGE_ROLES": args.roles}
        env.update(dict(pair.split("=", 1) for pair in extra))
        fleet = Fleet(1, env, bench.workdir, [{}])
        fleet.root = Path(root)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            await bench.emulator.ready()
            await fleet.start_all()
            process = fleet.processes[0]
            assert process is not None
            url = f"{fleet.url(0)}/slack/events"
            posts = [signed_post(n, run_id) for n in range(args.warm + args.events)]

            async def post(n: int) -> float:
                _, raw, headers = posts[n]
                started = time.perf_counter()
                async with session.post(url, data=raw, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                return time.perf_counter() - started

            for n in range(args.warm):
                await post(n)
            await session.close()
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            spy = None
            if args.profile:
                form = ("raw", "--rate", str(args.profile_rate))
                spy = harness.py_spy(process.pid, f"{args.profile}.{run_id}", *form)
            await asyncio.sleep(1.0)  # the warm-up's signs settle (and py-spy attaches) first
            cpu = process_cpu_seconds(process.pid)
            burst = range(args.warm, args.warm + args.events)
            acks = await asyncio.gather(*(post(n) for n in burst))
            cpu_acked = process_cpu_seconds(process.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_signed.wait(), 30)
            await asyncio.sleep(0.2)
            cpu_signed = process_cpu_seconds(process.pid)
            harness.stop_spy(spy)
            n = args.events
            return (
                f"ack p50 {percentile(acks, 0.5) * 1e3:4.0f} ms p99 "
                f"{percentile(acks, 0.99) * 1e3:4.0f} ms max {max(acks) * 1e3:4.0f} ms | CPU to "
                f"the last ack {(cpu_acked - cpu) * 1e3 / n:.3f} ms/ack, with the signs "
                f"{(cpu_signed - cpu) * 1e3 / n:.3f} ms/event ({signs - args.warm} signs)"
            )
        finally:
            await session.close()
            fleet.stop()


_NULL_SERVER = """
import asyncio, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 0\\r\\n\\r\\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=2048)
    await server.serve_forever()
asyncio.run(main())
"""


async def floor(args: argparse.Namespace, run_id: int) -> str:
    """The same burst against a server that only reads each request and answers 200: what
    the driver itself needs on this machine (no bridge, no Redis, no signs)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", _NULL_SERVER, str(port)])
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        await wait_port(port)
        url = f"http://127.0.0.1:{port}/slack/events"
        posts = [signed_post(n, run_id) for n in range(args.events)]

        async def post(n: int) -> float:
            _, raw, headers = posts[n]
            started = time.perf_counter()
            async with session.post(url, data=raw, headers=headers) as response:
                await response.read()
            return time.perf_counter() - started

        acks = await asyncio.gather(*(post(n) for n in range(args.events)))
        p50, p99 = percentile(acks, 0.5) * 1e3, percentile(acks, 0.99) * 1e3
        return f"ack p50 {p50:4.0f} ms p99 {p99:4.0f} ms"
    finally:
        await session.close()
        server.kill()
        server.wait()


async def wait_port(port: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


async def main(args: argparse.Namespace) -> None:
    print(f"{os.cpu_count()} CPUs; {args.events} at once; roles {args.roles}")
    run_id = int(time.time()) % 1000
    variants = [("A", args.root or str(ROOT), args.env)]
    if args.root_b or args.env_b:
        variants.append(("B", args.root_b or args.root or str(ROOT), args.env_b))
    for name, root, extra in variants:
        print(f"{name}: {root} {' '.join(extra)}")
    for _ in range(args.repeat):
        if args.floor:
            run_id += 1
            print(f"floor {await floor(args, run_id)}", flush=True)
        for name, root, extra in variants:
            run_id += 1
            print(f"{name} {await burst(args, run_id, root, extra)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--roles", default='["http","listeners"]')
    parser.add_argument("--floor", action="store_true", help="also the null server's burst")
    parser.add_argument("--profile", help="py-spy raw stacks of each burst to PATH.<run>")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    # A B A B in one invocation: B is another checkout (its code, this bench) and/or other env
    parser.add_argument("--root", default="", help="the checkout A runs (default: this one)")
    parser.add_argument("--root-b", default="")
    parser.add_argument("--env-b", action="append", default=[], metavar="NAME=VALUE")
    harness.run(main(parser.parse_args()))
