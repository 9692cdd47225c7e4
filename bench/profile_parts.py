"""Where a py-spy raw profile's samples go: self time by component, and the costliest frames.

Run: .venv/bin/python -m bench.profile_parts PROFILE.raw [--top 25] [--within bridge/]

A sample is charged to its innermost Python frame's component (py-spy records no native
frames, so time in C code counts for the Python function that called it), and to the innermost
step of a turn on its stack (STEPS; a protocol callback such as a response parser runs outside
any task's stack and lands in "other"). `--within` also lists, inclusively, the modules under
that prefix (a sample counts once per module on its stack).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")

# First match wins: (component, prefix of the frame's path as py-spy prints it).
COMPONENTS = [
    ("bridge core", ("bridge/chat", "bridge/actions", "bridge/turn", "bridge/ledger",
                     "bridge/outbound", "bridge/worker", "bridge/inbox", "bridge/policy",
                     "bridge/models", "bridge/codec", "bridge/sanitise", "bridge/threadmap",
                     "bridge/core", "bridge/metrics", "bridge/logs", "bridge/commands",
                     "bridge/reconcile", "bridge/admission", "bridge/permissions",
                     "bridge/lifecycle", "bridge/deadletters", "bridge/edits")),
    ("bridge store", ("bridge/store/",)),
    ("bridge engage client", ("bridge/engage/",)),
    ("bridge other", ("bridge/",)),
    ("slack adapter", ("adapters/slack/",)),
    ("other adapters", ("adapters/",)),
    ("redis-py", ("redis/",)),
    ("httpx/httpcore/sse", ("httpx", "httpcore/", "h11/")),
    ("aiohttp/yarl/multidict", ("aiohttp/", "yarl/", "multidict/", "aiohappyeyeballs/")),
    ("slack_sdk", ("slack_sdk/",)),
    ("slack_bolt", ("slack_bolt/",)),
    ("uvicorn/starlette/httptools", ("uvicorn/", "starlette/", "httptools/", "fastapi/")),
    ("pydantic", ("pydantic",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("logging", ("logging/",)),
    ("json", ("json/",)),
    ("asyncio/uvloop (loop, tasks, timeouts)", ("asyncio/", "uvloop/", "contextlib")),
]  # fmt: skip

# A turn's steps, by function name (py-spy's `Class.method`); a sample goes to the innermost.
STEPS = [
    ("ingress: accept (policy + ACCEPT script)", ("InboxQueue.accept",)),
    ("ingress: HTTP server, guard, Bolt", ("IngressGuard.__call__", "RequestResponseCycle.run_asgi",
                                           "HttpToolsProtocol.data_received")),
    ("accept sign (Slack setStatus)", ("Outbound._show_accepted",)),
    ("status during the turn (setStatus)", ("Outbound.set_status",)),
    ("stream read", ("Workers._read", "Workers._claim")),
    ("BEGIN script", ("ThreadState.begin",)),
    ("conversation create + record (Engage, Redis)", ("ThreadMap.ensure",)),
    ("chat stream (Engage)", ("EngageClient.chat_stream",)),
    ("post (Slack postMessage + posted ledgers)", ("Outbound.post",)),
    ("COMMIT script", ("TurnLedger.commit",)),
    ("heartbeat", ("Workers._heartbeat",)),
    ("turn bookkeeping (worker, runner, actions)", ("Workers._handle", "Bridge.submit")),
]  # fmt: skip


def step(stack: list[tuple[str, str]]) -> str:
    for function, _ in reversed(stack):
        for name, functions in STEPS:
            if function in functions:
                return name
    return "event loop, connections, other"


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        out.append((match["function"], match["path"]) if match else (frame, ""))
    return out


def component(path: str) -> str:
    for name, prefixes in COMPONENTS:
        if path.startswith(prefixes):
            return name
    return "other"


def read(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((frames(stack), int(count)))
    return samples


def main(args: argparse.Namespace) -> None:
    samples = read(Path(args.profile))
    total = sum(n for _, n in samples)
    parts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    for stack, n in samples:
        steps[step(stack)] += n
        function, path = stack[-1]
        parts[component(path)] += n
        leaves[f"{function} ({path})"] += n
        if args.within:
            for module in {p for _, p in stack if p.startswith(args.within)}:
                inclusive[module] += n
    print(f"{total} samples; self time by component:")
    for name, n in parts.most_common():
        print(f"  {name:42s} {100 * n / total:5.1f} %")
    print("by step of the turn (a sample goes to the innermost step on its stack):")
    for name, n in steps.most_common():
        print(f"  {name:46s} {100 * n / total:5.1f} %")
    print(f"costliest frames (self, top {args.top}):")
    for name, n in leaves.most_common(args.top):
        print(f"  {100 * n / total:5.1f} %  {name}")
    if args.within:
        print(f"modules under {args.within} (inclusive):")
        for name, n in inclusive.most_common(args.top):
            print(f"  {100 * n / total:5.1f} %  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--within", default="")
    main(parser.parse_args())
