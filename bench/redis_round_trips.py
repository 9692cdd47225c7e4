"""Redis round trips per turn: the core alone (no platform adapter state), on a real redis-server.

Run: .venv/bin/python -m bench.redis_round_trips [--threads 50] [--follow-ups 3]

Every request the client writes to a socket is one round trip (a pipeline is one); the
handshake of each new pooled connection is counted apart (once per connection, not per turn).
The core runs in this process with a recording adapter and the emulator in-process (agent
`parrot`): first messages (the conversation is created) and follow-ups (it exists) are counted
apart, split into ingress (`submit`, before the platform's ack) and the worker's side (read,
lease, turn, post, commit, ack). Idle blocking reads after the work is done are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, create_app
from bridge.engage.client import EngageClient
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


async def drain(bridge: Any, adapter: RecordingAdapter, expected: int) -> None:
    task = asyncio.create_task(bridge.run_workers())
    while len(adapter.sent) < expected:
        await asyncio.sleep(0.01)
    while await bridge.queue_depth():
        await asyncio.sleep(0.01)
    PHASE[0] = "idle"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def main(args: argparse.Namespace) -> None:
    server = RedisServer()
    server.start()
    pool = aioredis.BlockingConnectionPool.from_url(
        server.url, connection_class=CountingConnection, max_connections=64, socket_timeout=30
    )
    redis = aioredis.Redis(connection_pool=pool)
    transport = httpx.ASGITransport(app=create_app())
    engage = EngageClient(
        base_url="http://emulator", api_key=DEFAULT_API_KEY, org_id=DEFAULT_ORG_ID,
        transport=transport,
    )  # fmt: skip
    adapter = RecordingAdapter()
    bridge = make_bridge(redis, engage, adapter, core_settings(worker_block_seconds=0.05))
    threads = [thread_key(f"rt{n}") for n in range(args.threads)]
    try:
        for phase, count in [("first", 1), ("follow-up", args.follow_ups)]:
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
        await engage.aclose()
        await redis.aclose()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--follow-ups", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
