"""Loop work per turn (tasks, futures, timers, callbacks by origin) and the first sign's loop hops.

Run: .venv/bin/python -m bench.loop_count [--threads 200] [--follow-ups 2] [--top 25]

The turns of `bench.core_cpu` (the core with a recording adapter, the emulator in its own
process, a real redis-server) on asyncio's own loop with every `create_task`, `create_future`,
`call_soon`, `call_later`/`call_at` counted (uvloop cannot be instrumented from Python; the
counts are the same code's). Each is charged to the first frame outside asyncio (and, with
`--libs`, outside the site-packages too): a task to its caller, a `call_soon` to the callback's
owner (a task's step counts as a hop of that task's coroutine). Async generators dropped before
their end count too: the loop closes each with a task of its own.

In a whole bridge process: `BENCH_LOOP_COUNT=PATH python -m bench.bench_inflight --targets
bridge ...` runs the bridge (`bench.bridge_process`) on this loop; at its exit it writes the
counts to PATH and, for every Slack Events POST, when (seconds and loop iterations) it passed
the steps to its accept sign's `setStatus` leaving to PATH.hops. Read both with
`python -m bench.loop_count --report PATH --turns N`. Under a saturated loop every iteration
runs all ready work, so each hop a step waits costs a whole iteration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from bench.chaos_fleet import Emulator
from bench.core_cpu import turns
from tests.redis_server import RedisServer

_ASYNCIO = str(Path(asyncio.__file__).parent)
_HERE = __file__


def _origin(frame: FrameType | None, skip_libs: bool) -> str:
    while frame is not None:
        name = frame.f_code.co_filename
        if not (
            name.startswith(_ASYNCIO) or name == _HERE or (skip_libs and "site-packages" in name)
        ):
            short = name.split("site-packages/")[-1].split("/work/wt/")[-1]
            return f"{short}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


class CountingLoop(asyncio.SelectorEventLoop):
    iterations = 0

    def _run_once(self) -> None:
        self.iterations += 1
        super()._run_once()  # type: ignore[misc]

    def __init__(self, skip_libs: bool) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.skip_libs = skip_libs
        self.on = False

    def _note(self, kind: str, depth: int = 2) -> None:
        if self.on:
            self.counts[kind, _origin(sys._getframe(depth), self.skip_libs)] += 1

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:  # type: ignore[override]
        self._note("task")
        return super().create_task(coro, **kwargs)

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        # An async generator dropped before its end: closed by a task of its own.
        if self.on:
            self.counts[
                "agen",
                agen.ag_code.co_qualname
                + " "
                + agen.ag_code.co_filename.split("site-packages/")[-1],
            ] += 1
        super()._asyncgen_finalizer_hook(agen)  # type: ignore[misc]

    def create_future(self) -> asyncio.Future[Any]:
        self._note("future")
        return super().create_future()

    def call_at(self, when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("timer")
        return super().call_at(when, callback, *args, **kwargs)

    def call_soon(self, callback: Any, *args: Any, **kwargs: Any) -> Any:
        if self.on:
            owner = getattr(callback, "__self__", None)
            if isinstance(owner, asyncio.Task):
                coro = owner.get_coro()
                code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
                where = f"step of {code.co_qualname if code else type(coro).__name__}"
            else:  # never repr(): a repr may read state that is not there yet (and cache it)
                func = getattr(callback, "func", callback)  # functools.partial
                where = getattr(func, "__qualname__", type(func).__name__)
            self.counts["call_soon", where] += 1
        return super().call_soon(callback, *args, **kwargs)


def install(path: str) -> None:
    """In a bridge process (`bench.bridge_process` with BENCH_LOOP_COUNT=PATH): run on a counting
    asyncio loop and write the counts to PATH when the process exits."""
    import atexit

    import bridge.eventloop

    loops: list[CountingLoop] = []

    def factory(use_uvloop: bool) -> Any:
        def make() -> CountingLoop:
            loop = CountingLoop(skip_libs=False)
            loop.on = True
            loops.append(loop)
            return loop

        return make

    def dump() -> None:
        with open(path, "w") as out:
            for loop in loops:
                for (kind, where), n in loop.counts.most_common():
                    out.write(f"{n}\t{kind}\t{where}\n")

    bridge.eventloop.loop_factory = factory  # type: ignore[assignment]
    atexit.register(dump)
    _trace_first_sign(path + ".hops")


def _trace_first_sign(path: str) -> None:
    """Note when (seconds, loop iteration) each Events POST passes the steps to its accept sign."""
    import contextvars
    import time

    import aiohttp.client_reqrep
    from uvicorn.protocols.http import httptools_impl

    import bridge.outbound
    from bench.loop_count import CountingLoop

    marks: contextvars.ContextVar[list[tuple[str, float, int]] | None] = contextvars.ContextVar(
        "marks", default=None
    )
    done: list[list[tuple[str, float, int]]] = []

    def now(step: str, into: list[tuple[str, float, int]] | None = None) -> None:
        trail = into if into is not None else marks.get()
        if trail is not None:
            loop = asyncio.get_running_loop()
            assert isinstance(loop, CountingLoop)
            trail.append((step, time.perf_counter(), loop.iterations))

    cycle_init = httptools_impl.RequestResponseCycle.__init__
    run_asgi = httptools_impl.RequestResponseCycle.run_asgi

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        cycle_init(self, *args, **kwargs)
        self.trail = []
        now("headers complete", self.trail)

    async def traced_run_asgi(self: Any, app: Any) -> None:
        if self.scope.get("method") == "POST" and self.scope["path"].startswith("/slack"):
            now("request task runs", self.trail)
            marks.set(self.trail)
        await run_asgi(self, app)

    import bridge.inbox

    accept = bridge.inbox.InboxQueue.accept

    async def traced_accept(self: Any, message: Any) -> Any:
        now("submit slot taken (accept)")
        return await accept(self, message)

    bridge.inbox.InboxQueue.accept = traced_accept  # type: ignore[method-assign]
    sign_accepted = bridge.outbound.Outbound.sign_accepted
    show = bridge.outbound.Outbound._show_accepted

    def traced_sign(self: Any, thread: Any) -> None:
        now("stored (ACCEPT answered)")
        sign_accepted(self, thread)

    async def traced_show(self: Any, adapter: Any, thread: Any) -> None:
        trail = marks.get()
        marks.set(None)
        if trail is not None:
            now("sign starts", trail)
            marks.set([*trail])  # the sign's own copy
        await show(self, adapter, thread)

    write_bytes = aiohttp.client_reqrep.ClientRequest.write_bytes

    async def traced_write(self: Any, *args: Any) -> None:
        trail = marks.get()
        if trail is not None and trail[-1][0] == "sign starts":
            now("setStatus written", trail)
            done.append(trail)
        await write_bytes(self, *args)

    traced_write.__qualname__ = write_bytes.__qualname__  # still started eagerly (bridge.eager)
    httptools_impl.RequestResponseCycle.__init__ = init  # type: ignore[method-assign]
    httptools_impl.RequestResponseCycle.run_asgi = traced_run_asgi  # type: ignore[method-assign]
    bridge.outbound.Outbound.sign_accepted = traced_sign  # type: ignore[method-assign]
    bridge.outbound.Outbound._show_accepted = traced_show  # type: ignore[method-assign]
    aiohttp.client_reqrep.ClientRequest.write_bytes = traced_write  # type: ignore[method-assign]

    def dump() -> None:
        with open(path, "w") as out:
            for trail in done:
                out.write("\t".join(f"{step}|{t:.6f}|{i}" for step, t, i in trail) + "\n")

    import atexit

    atexit.register(dump)


def hops(path: str) -> None:
    """Median ms and loop iterations between the traced steps (install's .hops file)."""
    import statistics

    rows = [
        [part.split("|") for part in line.split("\t")]
        for line in Path(path).read_text().splitlines()
    ]
    rows = [r for r in rows if len(r) == 6]
    print(f"{len(rows)} first signs traced")
    for k in range(1, 6):
        ms = [(float(r[k][1]) - float(r[k - 1][1])) * 1000 for r in rows]
        its = [int(r[k][2]) - int(r[k - 1][2]) for r in rows]
        its.sort()
        print(
            f"{rows[0][k - 1][0]:>28} -> {rows[0][k][0]:<26} p50 {statistics.median(ms):7.1f} ms "
            f"{statistics.median(its):4.0f} iterations (mean {statistics.mean(its):.1f}, "
            f"p90 {its[len(its) * 9 // 10]})"
        )
    total = [(float(r[5][1]) - float(r[0][1])) * 1000 for r in rows]
    its = [int(r[5][2]) - int(r[0][2]) for r in rows]
    its.sort()
    p50, p90 = statistics.median(its), its[len(its) * 9 // 10]
    print(f"{'total':>57} p50 {statistics.median(total):7.1f} ms {p50:4.0f} iterations (p90 {p90})")


def report(path: str, turns: int, top: int) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for line in Path(path).read_text().splitlines():
        n, kind, where = line.split("\t", 2)
        counts[kind, where] += int(n)
    totals: Counter[str] = Counter()
    for (kind, _), n in counts.items():
        totals[kind] += n
    print(
        f"{turns} turns; per turn: " + ", ".join(f"{k} {v / turns:.1f}" for k, v in totals.items())
    )
    for (kind, where), n in counts.most_common(top):
        print(f"{n / turns:7.2f}  {kind:9} {where}")


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, CountingLoop)
    with tempfile.TemporaryDirectory() as workdir:
        emulator = Emulator(Path(workdir))
        server = RedisServer()
        server.start()
        try:
            await emulator.ready()
            loop.on = True
            count, _ = await turns(args, emulator.url, server.url)
            loop.on = False
        finally:
            emulator.stop()
            server.close()
    totals: Counter[str] = Counter()
    for (kind, _), n in loop.counts.items():
        totals[kind] += n
    print(
        f"{count} turns; per turn: " + ", ".join(f"{k} {v / count:.1f}" for k, v in totals.items())
    )
    for (kind, where), n in loop.counts.most_common(args.top):
        print(f"{n / count:7.2f}  {kind:9} {where}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--follow-ups", type=int, default=2)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--libs", action="store_true", help="charge to the bridge's own frames")
    parser.add_argument("--report", metavar="PATH", help="counts a bridge process wrote (install)")
    parser.add_argument("--turns", type=int, default=1, help="with --report: turns it ran")
    args = parser.parse_args()
    args.profile = None
    if args.report:
        report(args.report, args.turns, args.top)
        if Path(args.report + ".hops").exists():
            hops(args.report + ".hops")
        sys.exit(0)
    with asyncio.Runner(loop_factory=lambda: CountingLoop(args.libs)) as runner:
        runner.run(main(args))
