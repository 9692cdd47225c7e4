"""The critical path of each turn, step by step, in a whole bridge process under bench_inflight.

Run: .venv/bin/python -m bench.bench_inflight --scenarios 200x50@1.0 --trace /tmp/t
     .venv/bin/python -m bench.turn_trace /tmp/t

With `--trace PATH` the driver writes, per thread, when it sent the Events POST and when the ack,
the first status and the reply arrived (PATH.driver.<target>), and the bridge process
(`bench.bridge_process` with BENCH_TURN_TRACE=PATH.bridge) notes when the turn passed each step
below (time.perf_counter, CLOCK_MONOTONIC: one clock for both processes). The report lists each
step's p50 from the POST and from the step before it, so a serial wait shows as a gap.
Steps noted in the bridge: the request head, ACCEPT sent and answered, the accept sign (start,
its setStatus written, its answer), the worker's XREADGROUP returning the entry, the turn's task
running, BEGIN answered, the conversation's create (start, the record write, end), every HTTP
request body written (`w:<path tail>`) and response head read (`r:<path tail>`) in the turn's
context, status calls, the answer event, the post (start, end), the commit (start, end).
"""

from __future__ import annotations

import argparse
import collections
import contextvars
import itertools
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Trail = list[tuple[str, float]]
_trail: contextvars.ContextVar[Trail | None] = contextvars.ContextVar("turn_trail", default=None)


def _ts(thread_key: str) -> str:
    return thread_key.rsplit(":", 1)[-1]


def install(path: str) -> None:
    """In a bridge process: note the steps of every turn, write them to PATH at exit."""
    import atexit

    from uvicorn.protocols.http import httptools_impl

    import bridge.chat
    import bridge.inbox
    import bridge.ledger
    import bridge.outbound
    import bridge.store.phases
    import bridge.threadmap
    import bridge.worker

    by_thread: dict[str, Trail] = {}

    def note(step: str, trail: Trail | None = None) -> None:
        trail = trail if trail is not None else _trail.get()
        if trail is not None:
            trail.append((step, time.perf_counter()))

    def around(owner: Any, name: str, before: str, after: str) -> None:
        original = getattr(owner, name)

        async def traced(*args: Any, **kwargs: Any) -> Any:
            note(before)
            try:
                return await original(*args, **kwargs)
            finally:
                note(after)

        traced.__qualname__ = original.__qualname__
        setattr(owner, name, traced)

    cycle_init = httptools_impl.RequestResponseCycle.__init__
    run_asgi = httptools_impl.RequestResponseCycle.run_asgi
    send = httptools_impl.RequestResponseCycle.send
    iterations = _LoopIterations()

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        cycle_init(self, *args, **kwargs)
        self.turn_trail = [("head", time.perf_counter())]

    async def traced_run_asgi(self: Any, app: Any) -> None:
        iterations.start()
        if self.scope.get("method") == "POST" and self.scope["path"].startswith("/slack"):
            _trail.set(self.turn_trail)
        await run_asgi(self, app)

    async def traced_send(self: Any, message: Any) -> None:
        await send(self, message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            note("ack written", self.turn_trail)

    httptools_impl.RequestResponseCycle.__init__ = init  # type: ignore[method-assign]
    httptools_impl.RequestResponseCycle.run_asgi = traced_run_asgi  # type: ignore[method-assign]
    httptools_impl.RequestResponseCycle.send = traced_send  # type: ignore[method-assign]

    accept = bridge.inbox.InboxQueue.accept
    replies = _RedisReplies()

    async def traced_accept(self: Any, message: Any) -> Any:
        trail = _trail.get()
        if trail is not None:
            by_thread.setdefault(str(message.thread), trail)
        note("ACCEPT sent")
        token = replies.label.set("ACCEPT")
        try:
            return await accept(self, message)
        finally:
            replies.label.reset(token)
            note("ACCEPT answered")

    bridge.inbox.InboxQueue.accept = traced_accept  # type: ignore[method-assign]

    show = bridge.outbound.Outbound._show_accepted

    async def traced_show(self: Any, adapter: Any, thread: Any) -> None:
        note("sign starts")
        await show(self, adapter, thread)
        note("sign done")

    bridge.outbound.Outbound._show_accepted = traced_show  # type: ignore[method-assign]

    read = bridge.worker.Workers._read

    async def traced_read(self: Any, cursor: str, count: int, block_ms: int | None) -> Any:
        entries = await read(self, cursor, count, block_ms)
        for _, thread_key in entries:
            trail = by_thread.get(thread_key)
            if trail is not None:
                note("XREADGROUP returned", trail)
        return entries

    bridge.worker.Workers._read = traced_read  # type: ignore[method-assign]

    handle = bridge.worker.Workers._handle

    async def traced_handle(self: Any, entry: Any) -> None:
        trail = by_thread.get(entry[1])
        _trail.set(trail)
        note("turn task runs")
        await handle(self, entry)

    bridge.worker.Workers._handle = traced_handle  # type: ignore[method-assign]

    around(bridge.store.phases.PhaseScripts, "begin", "BEGIN sent", "BEGIN answered")
    around(bridge.threadmap.ThreadMap, "ensure", "create starts", "create done")
    around(bridge.threadmap.ThreadMap, "put", "record write sent", "record written")
    around(bridge.outbound.Outbound, "set_status", "set_status starts", "set_status done")
    around(bridge.outbound.Outbound, "post_clears_status", "post_clears? starts", "post_clears?")
    around(bridge.outbound.Outbound, "post", "post starts", "post done")
    around(bridge.chat.AgentTurn, "_post_answer", "answer event", "answer handled")
    around(bridge.chat.AgentTurn, "_stream", "chat starts", "stream ended")
    around(bridge.ledger.TurnLedger, "commit", "COMMIT sent", "COMMIT answered")

    _trace_http(note)

    def dump() -> None:
        replies.resolve()
        Path(path + ".ahead").write_text("".join(f"{n}\n" for n in replies.ahead))
        Path(path + ".redis").write_text(
            "".join(f"{n}\t{name}\n" for name, n in replies.commands.most_common())
        )
        with open(path, "w") as out:
            for thread_key, trail in by_thread.items():
                steps = "\t".join(f"{step}|{t:.6f}" for step, t in trail)
                out.write(f"{_ts(thread_key)}\t{steps}\n")
        iterations.dump(path + ".loop")

    atexit.register(dump)


def _script_sources() -> dict[str, Any]:
    """The store's Lua scripts by their constant's name."""
    import importlib
    import pkgutil

    import bridge.store

    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(bridge.store.__path__):
        module = importlib.import_module(f"bridge.store.{info.name}")
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and "redis.call" in value:
                found[name] = value
    return found


class _RedisReplies:
    """When Redis's reply to a labelled command was read off its MuxRedis connection (the
    reader's step, before its caller wakes): replies come in order, so a command's is the
    connection's n-th read, n = replies read + commands waiting when it was sent."""

    def __init__(self) -> None:
        self.label: contextvars.ContextVar[str] = contextvars.ContextVar("redis_label", default="")
        self.reads: dict[int, list[float]] = {}
        self.sent: list[tuple[Trail, str, int, int]] = []
        self.ahead: list[int] = []  # commands waiting on the connection when each was sent
        try:
            from redis._parsers.hiredis import _AsyncHiredisParser

            from bridge.redismux import _Wire
        except ImportError:
            return
        read_response = _AsyncHiredisParser.read_response
        send_many = _Wire.send_many
        reads = self.reads
        self.commands: collections.Counter[str] = collections.Counter()
        self._count_commands()

        async def traced_read(parser: Any, *args: Any, **kwargs: Any) -> Any:
            reply = await read_response(parser, *args, **kwargs)
            reads.setdefault(id(parser), []).append(time.perf_counter())
            return reply

        def traced_send(wire: Any, packed: Any, count: int) -> Any:
            trail, label = _trail.get(), self.label.get()
            if trail is not None and label:
                key = id(wire.connection._parser)
                index = len(reads.setdefault(key, [])) + len(wire.waiting)
                self.sent.append((trail, label + " read", key, index))
                self.ahead.append(len(wire.waiting))
            return send_many(wire, packed, count)

        _AsyncHiredisParser.read_response = traced_read  # type: ignore[method-assign]
        _Wire.send_many = traced_send  # type: ignore[method-assign]

    def _count_commands(self) -> None:
        """Commands sent on the shared connection by name (scripts by their names in the
        store's modules), to see what waits ahead of an ACCEPT."""
        import redis.commands.core

        from bridge import redismux

        names: dict[str, str] = {}
        for cls in (redis.commands.core.Script, redis.commands.core.AsyncScript):
            register = cls.__init__

            def named_script(
                script: Any, client: Any, source: Any, register: Any = register
            ) -> None:
                register(script, client, source)
                sources = _script_sources()
                names[script.sha] = next((k for k, v in sources.items() if v == source), "?")

            cls.__init__ = named_script  # type: ignore[method-assign]
        execute = redismux.MuxRedis.execute_command
        commands = self.commands

        async def counted(client: Any, *args: Any, **options: Any) -> Any:
            name = str(args[0])
            if name == "EVALSHA":
                name = names.get(str(args[1]), "EVALSHA")
            elif name == "SCRIPT LOAD":
                source = args[1]
                name += " " + next((k for k, v in _script_sources().items() if v == source), "?")
            commands[name] += 1
            return await execute(client, *args, **options)

        redismux.MuxRedis.execute_command = counted  # type: ignore[method-assign]
        run = redismux.MuxPipeline.execute

        async def counted_block(block: Any, *args: Any) -> Any:
            commands["MULTI[" + ",".join(str(c[0][0]) for c in block.command_stack) + "]"] += 1
            return await run(block, *args)

        redismux.MuxPipeline.execute = counted_block  # type: ignore[method-assign]

    def resolve(self) -> None:
        for trail, step, key, index in self.sent:
            read = self.reads.get(key, [])
            if index < len(read):
                trail.append((step, read[index]))


class _LoopIterations:
    """Samples the event loop's iteration length every 10 ms while requests come (none for a
    second: it naps): the time between two steps of a task that yields with `sleep(0)`, taken
    after a first `sleep(0)` put it near the front of an iteration's ready callbacks (the
    iteration's callbacks after it, the poll and its I/O callbacks, the next one's before it)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.last_request = 0.0
        self._task: Any = None

    def start(self) -> None:
        self.last_request = time.perf_counter()
        if self._task is None:
            import asyncio

            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(0.01 if time.perf_counter() - self.last_request < 1.0 else 0.1)
            await asyncio.sleep(0)
            before = time.perf_counter()
            await asyncio.sleep(0)
            self.samples.append((before, time.perf_counter() - before))

    def dump(self, path: str) -> None:
        Path(path).write_text("".join(f"{at:.6f}\t{length:.6f}\n" for at, length in self.samples))


def _trace_http(note: Callable[[str], None]) -> None:
    """Every HTTP request body written and response head read, in a traced turn's context:
    aiohttp's, and bridge.http1's (its whole answer read)."""
    import aiohttp.client_reqrep

    _trace_http1(note)

    write_bytes = aiohttp.client_reqrep.ClientRequest.write_bytes

    async def traced_write(self: Any, *args: Any) -> None:
        note("w:" + self.url.path.rsplit("/", 1)[-1])
        await write_bytes(self, *args)

    traced_write.__qualname__ = write_bytes.__qualname__  # still started eagerly (bridge.eager)
    aiohttp.client_reqrep.ClientRequest.write_bytes = traced_write  # type: ignore[method-assign]

    start = aiohttp.client_reqrep.ClientResponse.start

    async def traced_start(self: Any, connection: Any) -> Any:
        response = await start(self, connection)
        note("r:" + self.url.path.rsplit("/", 1)[-1])
        return response

    aiohttp.client_reqrep.ClientResponse.start = traced_start  # type: ignore[method-assign]


def _trace_http1(note: Callable[[str], None]) -> None:
    try:
        from bridge import http1
    except ImportError:  # a checkout without it (bench_inflight --root-b)
        return
    tail: contextvars.ContextVar[str] = contextvars.ContextVar("http1_tail", default="")
    exchange = http1._Connection.exchange
    connect = http1.Http1._connect

    def traced(request: Any) -> Any:
        async def traced_request(self: Any, url: str, *args: Any) -> Any:
            name = url.split("?", 1)[0].rsplit("/", 1)[-1]
            note("p:" + name)
            token = tail.set(name)
            try:
                return await request(self, url, *args)
            finally:
                tail.reset(token)
                note("r:" + name)

        return traced_request

    async def traced_exchange(self: Any, request: bytes) -> Any:
        note("w:" + tail.get())
        return await exchange(self, request)

    async def traced_connect(self: Any, origin: Any) -> Any:
        note("c:" + tail.get())
        return await connect(self, origin)

    http1.Http1._connect = traced_connect  # type: ignore[method-assign]
    http1._Connection.exchange = traced_exchange  # type: ignore[method-assign]
    # JSON posts (Slack's), and whole requests where a checkout has them (the Engage client's)
    for name in ("post_json", "send"):
        if hasattr(http1.Http1, name):
            setattr(http1.Http1, name, traced(getattr(http1.Http1, name)))


def install_reference(path: str, reference_bot: Any) -> None:
    """In bench/reference_bot.py's process (its module, run as __main__): the same steps where
    it has them."""
    import atexit

    by_thread: dict[str, Trail] = {}

    def note(step: str, trail: Trail | None = None) -> None:
        trail = trail if trail is not None else _trail.get()
        if trail is not None:
            trail.append((step, time.perf_counter()))

    events = reference_bot.ReferenceBot.events
    iterations = _LoopIterations()

    async def traced_events(self: Any, request: Any) -> Any:
        iterations.start()
        _trail.set([("head", time.perf_counter())])
        return await events(self, request)

    turn = reference_bot.ReferenceBot.turn

    async def traced_turn(self: Any, team: str, event: dict[str, Any]) -> None:
        trail = _trail.get()
        if trail is not None:
            by_thread[event["ts"]] = trail
        note("turn task runs")
        await turn(self, team, event)

    reference_bot.ReferenceBot.events = traced_events  # type: ignore[method-assign]
    reference_bot.ReferenceBot.turn = traced_turn  # type: ignore[method-assign]
    _trace_http(note)

    def dump() -> None:
        with open(path, "w") as out:
            for ts, trail in by_thread.items():
                steps = "\t".join(f"{step}|{t:.6f}" for step, t in trail)
                out.write(f"{ts}\t{steps}\n")
        iterations.dump(path + ".loop")

    atexit.register(dump)
    # bench_inflight ends it with SIGTERM: exit through atexit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def driver_line(ts: str, sent: float, ack: float, sign: float | None, reply: float) -> str:
    sign_s = f"{sign:.6f}" if sign is not None else "-"
    return f"{ts}\t{sent:.6f}\t{ack:.6f}\t{sign_s}\t{reply:.6f}\n"


def _load(prefix: str, target: str) -> dict[str, Trail]:
    trails: dict[str, Trail] = {}
    driver = Path(f"{prefix}.driver.{target}")
    for line in driver.read_text().splitlines():
        ts, sent, ack, sign, reply = line.split("\t")
        trail: Trail = [("POST sent", float(sent)), ("ack seen", float(ack))]
        if sign != "-":
            trail.append(("status seen", float(sign)))
        trail.append(("reply seen", float(reply)))
        trails[ts] = trail
    inside = Path(f"{prefix}.{target}")
    if inside.exists():
        for line in inside.read_text().splitlines():
            ts, *steps = line.split("\t")
            if ts in trails:
                for part in steps:
                    step, t = part.rsplit("|", 1)
                    trails[ts].append((step, float(t)))
    return trails


def report(prefix: str, target: str, skip: float) -> None:
    """Each step's p50 (p10, p90) from the POST, and the p50 over turns of the time from the
    step listed before it (the steps in order of their p50): a serial wait shows as a gap."""
    trails = list(_load(prefix, target).values())
    if skip:
        trails.sort(key=lambda trail: trail[0][1])
        trails = trails[int(len(trails) * skip) :]
    per_turn: list[dict[str, float]] = []
    for trail in trails:
        sent, steps = trail[0][1], {}
        for step, t in trail:
            name, n = step, 2
            while name in steps:  # a step met twice in one turn (status calls): numbered
                name, n = f"{step} #{n}", n + 1
            steps[name] = (t - sent) * 1000
        per_turn.append(steps)
    names = {name for steps in per_turn for name in steps}
    at = {name: sorted(s[name] for s in per_turn if name in s) for name in names}
    order = sorted(names, key=lambda name: statistics.median(at[name]))
    print(f"{target}: {len(per_turn)} turns; ms from the POST: p50 (p10, p90), n; gap: p50")
    print("over turns of the time from the step above (turns that passed both)")
    for before, name in zip([None, *order], order, strict=False):
        values = at[name]
        p50 = statistics.median(values)
        p10, p90 = values[len(values) // 10], values[len(values) * 9 // 10]
        gaps = [s[name] - s[before] for s in per_turn if before in s and name in s]
        gap = f"{statistics.median(gaps):+7.1f}" if gaps else "       "
        print(f"{name:>30} {p50:8.1f} ({p10:7.1f}, {p90:7.1f}) n={len(values):4d}  {gap}")


CHAIN = {
    "bridge": [
        "POST sent", "head", "ACCEPT sent", "ACCEPT answered", "XREADGROUP returned",
        "turn task runs", "BEGIN sent", "BEGIN answered", "w:conversations", "r:conversations",
        "w:chat", "r:chat", "answer event",
        "w:chat.postMessage", "reply seen",
    ],
    "reference": [
        "POST sent", "head", "turn task runs", "w:conversations", "r:conversations", "w:chat",
        "r:chat", "w:chat.postMessage", "reply seen",
    ],
}  # fmt: skip
# The first visible sign's path: the bridge acks after the ACCEPT script took the message, then
# sends the sign (bridge.admission.after_ack); the reference sends it from its turn's task.
SIGN = "w:assistant.threads.setStatus"
SIGN_CHAIN = {
    "bridge": [
        "POST sent", "head", "ACCEPT sent", "ACCEPT read", "ACCEPT answered", "ack written",
        "sign starts", SIGN, "status seen",
    ],
    "reference": ["POST sent", "head", "turn task runs", SIGN, "status seen"],
}  # fmt: skip


def _kind(target: str) -> str:
    return "reference" if target == "reference" else "bridge"


def sign_chain(prefix: str, target: str, skip: float) -> None:
    """The first sign's path, p50 and p90 per link, and the loop iteration's length while the
    turns after the first `skip` ran."""
    trails = links(prefix, target, skip, SIGN_CHAIN[_kind(target)], "the first sign's path")
    loop = Path(f"{prefix}.{target}.loop")
    if not (loop.exists() and trails):
        return
    start, end = trails[0][0][1], max(t for trail in trails for _, t in trail)
    lengths = []
    for line in loop.read_text().splitlines():
        at, length = (float(v) for v in line.split("\t"))
        if start <= at <= end:
            lengths.append(length * 1000)
    lengths.sort()
    if lengths:
        print(
            f"{'loop iteration (sampled) p50 (p90) ms':>48} {statistics.median(lengths):7.1f} "
            f"({lengths[len(lengths) * 9 // 10]:7.1f}) n={len(lengths)}"
        )


def links(prefix: str, target: str, skip: float, steps: list[str], title: str) -> list[Trail]:
    """p50 (p90) over turns of each link between `steps` (turns that passed every step)."""
    trails = sorted(_load(prefix, target).values(), key=lambda trail: trail[0][1])
    trails = trails[int(len(trails) * skip) :]
    values_by_link: list[list[float]] = [[] for _ in steps[1:]]
    for trail in trails:
        first: dict[str, float] = {}
        for step, t in trail:
            first.setdefault(step, t)
        if all(step in first for step in steps):
            for k, (a, b) in enumerate(itertools.pairwise(steps)):
                values_by_link[k].append((first[b] - first[a]) * 1000)
    print(f"{target}: {title}, p50 (p90) ms per link over {len(values_by_link[0])} turns")
    total = 0.0
    for (a, b), values in zip(itertools.pairwise(steps), values_by_link, strict=True):
        if not values:
            continue
        values.sort()
        p50 = statistics.median(values)
        total += p50
        print(f"{a:>22} -> {b:<22} {p50:7.1f} ({values[len(values) * 9 // 10]:7.1f})")
    print(f"{'sum of p50s':>48} {total:7.1f}")
    return trails


def chain(prefix: str, target: str, skip: float) -> None:
    """The reply's critical path: p50 over turns of each link (turns that passed every step)."""
    trails = links(prefix, target, skip, CHAIN[_kind(target)], "the reply's path")
    print_own(trails, target)


def print_own(trails: list[Trail], target: str) -> None:
    """The reply's time minus the agent's."""
    # The agent's time (chat request written to answer read) apart, as it varies by itself.
    answer = "answer event" if target == "bridge" else "r:chat"
    own = []
    for trail in trails:
        first: dict[str, float] = {}
        for step, t in trail:
            first.setdefault(step, t)
        if all(s in first for s in ("POST sent", "reply seen", "w:chat", answer)):
            chat = first[answer] - first["w:chat"]
            own.append((first["reply seen"] - first["POST sent"] - chat) * 1000)
    if own:
        own.sort()
        print(
            f"{'reply minus the chat, p50 (p90)':>48} {statistics.median(own):7.1f} "
            f"({own[len(own) * 9 // 10]:7.1f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("prefix", help="the --trace PATH given to bench_inflight")
    parser.add_argument("--targets", default="reference,bridge,bridge-b")
    parser.add_argument("--skip", type=float, default=0.1, help="share of first turns left out")
    args = parser.parse_args()
    for target in args.targets.split(","):
        if Path(f"{args.prefix}.driver.{target}").exists():
            report(args.prefix, target, args.skip)
            chain(args.prefix, target, args.skip)
            sign_chain(args.prefix, target, args.skip)
