"""Redis round trips per turn: the core, and with `--slack` Slack's sending state, on real Redis.

Run: .venv/bin/python -m bench.redis_round_trips [--threads 50] [--follow-ups 3] [--slack] [--live]

Every request the client writes to a socket is one round trip (a pipeline is one), and so is
every command auto-pipelined on the shared connection (bridge.redismux: the turn waits for its
reply, even when other turns' commands share the write); the handshake of each new connection
is counted apart (once per connection, not per turn).
The core runs in this process with a recording adapter and the emulator in-process (agent
`parrot`): first messages (the conversation is created) and follow-ups (it exists) are counted
apart, split into ingress (`submit`, before the platform's ack) and the worker's side (read,
lease, turn, post, commit, ack). Idle blocking reads after the work is done are not counted.
`--slack` posts through the Slack adapter's sender (adapters.slack.outbound.SlackSender, its
per-part records and answer index) against the fake Slack instead of a recording adapter; the
Slack ingress (Bolt, the assistant context read of a DM) is not in it.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection

from adapters.slack.outbound import SlackSender, build_client
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, create_app
from bridge.engage.client import EngageClient
from bridge.models import Reply
from bridge.redismux import MUXED, MuxPipeline, MuxRedis
from bridge.store import keys
from tests.fakes.slack import FakeSlack
from tests.fixtures_core import RecordingAdapter, core_settings, make_bridge, message, thread_key
from tests.redis_server import RedisServer

SENT: Counter[str] = Counter()
PHASE = ["idle"]


HANDSHAKES: Counter[str] = Counter()


class CountingConnection(Connection):
    """Counts every socket write; those of a new connection's handshake (HELLO, CLIENT SETINFO)
    apart: they are paid once per pooled connection, not per turn."""

    _connecting = False

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        self._connecting = True
        try:
            await super().on_connect_check_health(check_health)
        finally:
            self._connecting = False

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        (HANDSHAKES if self._connecting else SENT)[PHASE[0]] += 1
        await super().send_packed_command(command, check_health)


class CountingMuxRedis(MuxRedis):
    """The runtime's single-Redis client; each auto-pipelined command or transaction counts as
    a round trip."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] in MUXED:
            SENT[PHASE[0]] += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return CountingPipeline(self, transaction, shard_hint)


class CountingPipeline(MuxPipeline):
    async def _execute_transaction(self, connection: Any, *args: Any) -> Any:
        if not isinstance(connection, Connection):  # on the shared connection, not a pooled one
            SENT[PHASE[0]] += 1
        return await super()._execute_transaction(connection, *args)


async def live(bridge: Any, adapter: Any, threads: list[Any], follow_ups: int, url: str) -> None:
    """Workers running while each message is submitted (an accept may start the turn in this
    process, bridge/store/start.py): one message at a time, waited for until its turn has
    committed (looked at through an uncounted client)."""
    probe = aioredis.Redis.from_url(url)
    task = asyncio.create_task(bridge.run_workers())
    try:
        while not int((await probe.info("clients"))["blocked_clients"]):
            await asyncio.sleep(0.01)
        for phase, count in [("first", 1), ("follow-up", follow_ups)]:
            for round_ in range(count):
                for thread in threads:
                    PHASE[0] = f"{phase} ingress"
                    await bridge.submit(message(thread, f"{phase} {round_}"))
                    PHASE[0] = f"{phase} worker"
                    expected = len(adapter.sent) + 1
                    while len(adapter.sent) < expected or await probe.exists(keys.lease(thread)):
                        await asyncio.sleep(0.002)
                    while await probe.xlen(keys.READY_STREAM):
                        await asyncio.sleep(0.002)
                    PHASE[0] = "idle"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await probe.aclose()


async def drain(bridge: Any, adapter: Any, expected: int) -> None:
    task = asyncio.create_task(bridge.run_workers())
    while len(adapter.sent) < expected:
        await asyncio.sleep(0.01)
    while await bridge.queue_depth():
        await asyncio.sleep(0.01)
    PHASE[0] = "idle"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class SlackPosting:
    """The Slack adapter's sending half against the fake Slack, noting what it posted."""

    name = "slack"

    def __init__(self, sender: SlackSender) -> None:
        self._sender = sender
        self.sent: list[Reply] = []

    async def start(self) -> None:
        return None

    async def run(self, inbox: Any) -> None:
        await asyncio.Event().wait()

    async def send(self, reply: Reply) -> str:
        posted = await self._sender.send(reply)
        self.sent.append(reply)
        return posted

    async def post_once(self, reply: Reply) -> tuple[str, bool]:
        posted = await self._sender.post_once(reply)
        self.sent.append(reply)
        return posted

    async def aclose(self) -> None:
        return None


async def main(args: argparse.Namespace) -> None:
    server = RedisServer()
    server.start()
    pool = aioredis.BlockingConnectionPool.from_url(
        server.url, connection_class=CountingConnection, max_connections=64, socket_timeout=30
    )
    redis = CountingMuxRedis(connection_pool=pool)
    transport = httpx.ASGITransport(app=create_app())
    engage = EngageClient(
        base_url="http://emulator", api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID,
        transport=transport,
    )  # fmt: skip
    slack = FakeSlack() if args.slack else None
    adapter: RecordingAdapter | SlackPosting = RecordingAdapter()
    if slack is not None:
        await slack.start()
        adapter = SlackPosting(SlackSender(build_client(slack.bot_token, slack.api_url), redis))
    block = 20.0 if args.live else 0.05  # live: no idle re-reads while a turn is waited for
    bridge = make_bridge(redis, engage, adapter, core_settings(worker_block_seconds=block))
    threads = [thread_key(f"rt{n}", platform=adapter.name) for n in range(args.threads)]
    try:
        if args.live:
            await live(bridge, adapter, threads, args.follow_ups, server.url)
        for phase, count in [] if args.live else [("first", 1), ("follow-up", args.follow_ups)]:
            for round_ in range(count):
                PHASE[0] = f"{phase} ingress"
                for thread in threads:
                    await bridge.submit(message(thread, f"{phase} {round_}"))
                PHASE[0] = f"{phase} worker"
                await drain(bridge, adapter, len(adapter.sent) + len(threads))
        turns = {"first": args.threads, "follow-up": args.threads * args.follow_ups}
        for phase, n in turns.items():
            ingress, worker = SENT[f"{phase} ingress"] / n, SENT[f"{phase} worker"] / n
            handshakes = (HANDSHAKES[f"{phase} ingress"] + HANDSHAKES[f"{phase} worker"]) / n
            print(
                f"{phase:9s} turn: {ingress + worker:.1f} round trips "
                f"(ingress {ingress:.1f}, worker {worker:.1f}) over {n} turns; "
                f"new pool connections' handshakes on top: {handshakes:.1f} per turn"
            )
    finally:
        if slack is not None:
            await slack.aclose()
        await engage.aclose()
        await redis.aclose()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--follow-ups", type=int, default=3)
    parser.add_argument(
        "--live", action="store_true", help="workers run while messages arrive, one at a time"
    )
    parser.add_argument("--slack", action="store_true", help="post through Slack's sender")
    asyncio.run(main(parser.parse_args()))
