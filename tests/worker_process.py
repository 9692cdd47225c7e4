"""A bridge worker in its own process, posting into Redis: `python -m tests.worker_process`.

Used by the crash test (SIGKILL mid-turn) and the benchmark's multi-process runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import redis.asyncio as aioredis

from bridge.core import Bridge
from bridge.engage.client import EngageClient
from bridge.metrics import Metrics
from tests.fixtures_core import RedisRecordingAdapter, core_settings


async def main(args: argparse.Namespace) -> None:
    redis = aioredis.Redis.from_url(args.redis_url, max_connections=1000)
    engage = EngageClient(base_url=args.engage_url, api_key=args.api_key, org_id=args.org_id)
    settings = core_settings(
        lease_seconds=args.lease_seconds,
        claim_idle_seconds=args.claim_idle_seconds,
        worker_concurrency=args.concurrency,
    )
    adapter = RedisRecordingAdapter(redis, name=args.platform)
    bridge = Bridge(
        settings=settings,
        redis=redis,
        engage=engage,
        adapters={adapter.name: adapter},
        metrics=Metrics(),
        consumer_name=args.consumer,
    )
    print("ready", flush=True)
    try:
        await bridge.run_workers()
    finally:
        await engage.aclose()
        await redis.aclose()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--engage-url", required=True)
    parser.add_argument("--api-key", default="emulator-key")
    parser.add_argument("--org-id", default="emulator-org")
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--platform", default="console")
    parser.add_argument("--lease-seconds", type=float, default=1.0)
    parser.add_argument("--claim-idle-seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parse_args(sys.argv[1:])))
