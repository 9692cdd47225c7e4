"""Client CPU of the Slack Web API calls of a turn (setStatus + chat.postMessage), over loopback.

    .venv/bin/python -m bench.slack_client_cpu [--pairs 4000] [--concurrency 50] [--repeats 4]
        [--bare]

The lean fake Slack (bench/lean_slack.py) runs in a child process, so this process's CPU time is
the client's alone: `build_client` as the adapter builds it (retry handlers, logger, one
aiohttp session), on uvloop with the bridge's task factory, sending the two calls of a turn as
`SlackSender` does. `--bare` sends the same two requests with aiohttp alone (the floor any
aiohttp client pays). Prints the best of `--repeats` rounds in us of CPU per pair; on a shared
machine these move by ±20 %: for A/B, count instructions instead, e.g. the client process's
`valgrind --tool=callgrind` total at 100 and at 600 pairs (`--repeats 1`), the difference
divided by 1,000 pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from typing import Any

import aiohttp

from adapters.slack.clients import build_client
from bench import lean_slack
from bridge.eventloop import run

METADATA = {"event_type": "engage_reply", "event_payload": {"key": "k" * 32, "part": 0}}
ANSWER = "An answer of a few sentences, as the parrot agent sends back. " * 3


def serve(port_out: Any) -> None:
    async def main() -> None:
        slack = lean_slack.LeanSlack(lambda ts, at: None)
        await slack.start()
        port_out.put(slack.port)
        await asyncio.Event().wait()

    asyncio.run(main())


async def pairs(args: argparse.Namespace, url: str) -> list[float]:
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    client = build_client(lean_slack.BOT_TOKEN, url)
    client.session = session
    headers = {"Authorization": f"Bearer {lean_slack.BOT_TOKEN}",
               "Content-Type": "application/json;charset=utf-8"}  # fmt: skip

    async def one(n: int) -> None:
        ts = f"1700000000.{n:06d}"
        if args.bare:
            status = {"channel_id": "C1", "thread_ts": ts, "status": "Thinking…"}
            async with session.post(url + "assistant.threads.setStatus", json=status,
                                    headers=headers) as res:  # fmt: skip
                await res.json()
            post = {"channel": "C1", "thread_ts": ts, "markdown_text": ANSWER,
                    "metadata": METADATA, "unfurl_links": False}  # fmt: skip
            async with session.post(url + "chat.postMessage", json=post, headers=headers) as res:
                await res.json()
            return
        await client.assistant_threads_setStatus(channel_id="C1", thread_ts=ts, status="Thinking…")
        await client.chat_postMessage(
            channel="C1", thread_ts=ts, metadata=METADATA, unfurl_links=False, markdown_text=ANSWER
        )

    async def worker(numbers: list[int]) -> None:
        for n in numbers:
            await one(n)

    results = []
    try:
        for _ in range(args.repeats + 1):  # the first round warms up
            numbers = list(range(args.pairs))
            chunks = [numbers[i :: args.concurrency] for i in range(args.concurrency)]
            started = time.process_time()
            await asyncio.gather(*(worker(chunk) for chunk in chunks))
            results.append((time.process_time() - started) / args.pairs * 1e6)
    finally:
        await session.close()
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--bare", action="store_true")
    args = parser.parse_args()
    ports: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    child.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=30)}/api/"
        rounds = run(pairs(args, url), use_uvloop=True)
    finally:
        child.terminate()
        child.join(10)
    label = "bare aiohttp" if args.bare else "build_client"
    shown = ", ".join(f"{r:.0f}" for r in rounds)
    print(f"{label}: best {min(rounds):.0f} us CPU per pair ({shown})")


if __name__ == "__main__":
    main()
