"""What the bridge process does over time: a py-spy timeline binned by what each sample was doing.

Run: flock /tmp/engage-bench.lock .venv/bin/python -m bench.bench_inflight \
       --scenarios 500x500@1.0 --targets bridge --profile /tmp/t.json
     .venv/bin/python -m bench.burst_timeline /tmp/t.json [--bin-ms 20] [--until-ms 1500]

The profile is py-spy's speedscope output with idle samples kept, so sample n is at n / rate.
Each sample goes to the innermost kind of work on its stack (KINDS); a sample whose innermost
Python frame is the loop's `Runner.run` is the loop waiting or inside uvloop's own C code. The
ingress window is the first to the last bin with samples of an HTTP request's handling: what
else ran in it is what the acks waited for.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

# (kind, function names or path parts): the innermost frame of a named function wins, else the
# innermost frame under one of the paths (protocol callbacks outside any task).
KINDS = [
    ("conn", ("HttpToolsProtocol.__init__", "HttpToolsProtocol.connection_made",
              "_HeadDeadline.connection_made", "HttpToolsProtocol.connection_lost")),
    ("sign", ("_AfterAck.run", "_AfterAck.spawn", "Outbound._show_accepted",
              "Outbound.sign_accepted.<locals>.show")),
    ("req", ("RequestResponseCycle.run_asgi", "HttpToolsProtocol.data_received",
             "_HeadDeadline.data_received", "CountIngress.__call__")),
    ("read", ("Workers._read", "Workers._claim", "Workers.run")),
    ("turn", ("Workers._handle", "Workers._heartbeat")),
    ("redis", ("redis/", "bridge/redismux")),
    ("aiohttp", ("aiohttp/", "aiohappyeyeballs/")),
]  # fmt: skip
LOOP = "loop"
ORDER = ["conn", "req", "sign", "read", "turn", "redis", "aiohttp", "other", LOOP]


def kind_of(stack: list[tuple[str, str]]) -> str:
    if stack and stack[-1][0] == "Runner.run":
        return LOOP
    for function, _ in reversed(stack):  # the task or callback it runs in first
        for kind, marks in KINDS:
            if function in marks:
                return kind
    for _, path in reversed(stack):  # then the library of a protocol callback
        for kind, marks in KINDS:
            if any("/" in m and m in path for m in marks):
                return kind
    return "other"


def main(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.profile).read_text())
    frames = [(f["name"], f["file"]) for f in data["shared"]["frames"]]
    profile = max(data["profiles"], key=lambda p: len(p["samples"]))  # the loop's thread
    weights = profile["weights"]
    bins: dict[int, Counter[str]] = {}
    at = 0.0
    for sample, weight in zip(profile["samples"], weights, strict=True):
        kind = kind_of([frames[i] for i in sample])
        bins.setdefault(int(at * 1000 // args.bin_ms), Counter())[kind] += 1
        at += weight
    busy = [b for b, c in bins.items() if c["req"] or c["conn"]]
    if not busy:
        print("no ingress samples")
        return
    first, last = min(busy), max(busy)
    print(f"{len(profile['samples'])} samples; ingress window bins {first}-{last} "
          f"({(last - first + 1) * args.bin_ms} ms); samples per bin by kind:")  # fmt: skip
    print("  ms    " + " ".join(f"{k:>7s}" for k in ORDER))
    total: Counter[str] = Counter()
    end = first + args.until_ms // args.bin_ms
    for b in range(max(0, first - 2), end + 1):
        counts = bins.get(b, Counter())
        if first <= b <= last:
            total.update(counts)
        mark = "*" if first <= b <= last else " "
        row = " ".join(f"{counts[k]:7d}" for k in ORDER)
        print(f"{mark}{(b - first) * args.bin_ms:5d}  {row}")
    n = sum(total.values()) or 1
    print("ingress window, share of samples: "
          + ", ".join(f"{k} {total[k] * 100 / n:.0f} %" for k in ORDER if total[k]))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--bin-ms", type=int, default=20)
    parser.add_argument("--until-ms", type=int, default=1500)
    main(parser.parse_args())
