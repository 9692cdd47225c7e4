"""Client CPU of the Slack Web API calls of a turn (setStatus + chat.postMessage), over loopback.

    .venv/bin/python -m bench.slack_client_cpu [--pairs 4000] [--concurrency 50] [--repeats 4]
        [--bare | --raw]

The lean fake Slack (bench/lean_slack.py) runs in a child process, so this process's CPU time is
the client's alone: `build_client` as the adapter builds it (retry handlers, logger, one
aiohttp session, kept-alive HTTP/1.1 for JSON POSTs: `clients.open_session`; `--aiohttp`
without the latter), on uvloop with the bridge's task factory, sending the two calls of a turn as
`SlackSender` does. `--bare` sends the same two requests with aiohttp alone (the floor any
aiohttp client pays); `--raw` over one keep-alive HTTP/1.1 connection per concurrent caller,
prepared header bytes and httptools (no TLS, gzip, proxy, timeouts or pool: the floor below
aiohttp, for comparison only). Prints the best of `--repeats` rounds in us of CPU per pair; on
a shared machine these move by ±20 %: for A/B, count instructions instead, e.g. the client process's
`valgrind --tool=callgrind` total at 100 and at 600 pairs (`--repeats 1`), the difference
divided by 1,000 pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from typing import Any

import aiohttp
import httptools
from yarl import URL

from adapters.slack.clients import build_client, close_session, open_session
from bench import lean_slack
from bridge.eventloop import run

METADATA = {"event_type": "engage_reply", "event_payload": {"key": "k" * 32, "part": 0}}
ANSWER = "An answer of a few sentences, as the parrot agent sends back. " * 3


class RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that writes prepared bytes and parses answers with
    httptools: what a dedicated client would cost, the floor below aiohttp (`--raw`)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.done: asyncio.Future[bytes] | None = None

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        target = URL(url)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, target.host or "", target.port or 80)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.done is not None
        self.done.set_result(b"".join(self.body))
        self.body = []

    async def post(self, head: bytes, body: dict[str, Any]) -> Any:
        raw = json.dumps(body).encode()
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(head % len(raw) + raw)
        return json.loads(await self.done)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


def raw_head(method: str) -> bytes:
    return (
        f"POST /api/{method} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
        f"Accept-Encoding: gzip, deflate\r\nUser-Agent: {USER_AGENT}\r\n"
        f"Authorization: Bearer {lean_slack.BOT_TOKEN}\r\n"
        "Content-Type: application/json;charset=utf-8\r\nContent-Length: %d\r\n\r\n"
    ).encode()


USER_AGENT = "Python/3.11 slackclient/3 Linux"
STATUS_HEAD, POST_HEAD = raw_head("assistant.threads.setStatus"), raw_head("chat.postMessage")


async def raw_pair(connection: RawConnection, n: int) -> None:
    ts = f"1700000000.{n:06d}"
    status = {"channel_id": "C1", "thread_ts": ts, "status": "Thinking…"}
    assert (await connection.post(STATUS_HEAD, status))["ok"]
    post = {"channel": "C1", "thread_ts": ts, "markdown_text": ANSWER, "metadata": METADATA,
            "unfurl_links": False}  # fmt: skip
    assert (await connection.post(POST_HEAD, post))["ok"]


def serve(port_out: Any) -> None:
    async def main() -> None:
        slack = lean_slack.LeanSlack(lambda ts, at: None)
        await slack.start()
        port_out.put(slack.port)
        await asyncio.Event().wait()

    asyncio.run(main())


async def pairs(args: argparse.Namespace, url: str) -> list[float]:
    client = build_client(lean_slack.BOT_TOKEN, url)
    open_session(client)  # as the adapter does (kept-alive HTTP/1.1 for JSON POSTs)
    if args.aiohttp:
        await close_session(client)
        client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    session = client.session
    assert session is not None
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
        raw = await RawConnection.open(url) if args.raw else None
        for n in numbers:
            if raw is not None:
                await raw_pair(raw, n)
            else:
                await one(n)
        if raw is not None:
            raw.close()

    results = []
    try:
        for _ in range(args.repeats + 1):  # the first round warms up
            numbers = list(range(args.pairs))
            chunks = [numbers[i :: args.concurrency] for i in range(args.concurrency)]
            started = time.process_time()
            await asyncio.gather(*(worker(chunk) for chunk in chunks))
            results.append((time.process_time() - started) / args.pairs * 1e6)
    finally:
        await close_session(client)
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--aiohttp", action="store_true", help="build_client on aiohttp alone")
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
    label = "raw HTTP/1.1" if args.raw else "bare aiohttp" if args.bare else "build_client"
    label += " (aiohttp only)" if args.aiohttp else ""
    shown = ", ".join(f"{r:.0f}" for r in rounds)
    print(f"{label}: best {min(rounds):.0f} us CPU per pair ({shown})")


if __name__ == "__main__":
    main()
