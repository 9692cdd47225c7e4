"""Client CPU of the workers' stream read one at a time: `XADD` then `XREADGROUP ... BLOCK`.

Run: flock /tmp/engage-bench.lock .venv/bin/python -m bench.redis_read_cpu

The client `connect_redis` makes for a single Redis (real redis-server, uvloop), 1,000 sequential
pairs, best of 5 rounds; `XADD` alone (auto-pipelined) for comparison. Unbatched (one entry per
read), a worker pays one such read per turn. For A/B, run it from each checkout with PYTHONPATH
set to that checkout, alternating.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bridge.eventloop import run
from bridge.redisconn import connect_redis
from tests.redis_server import RedisServer

THREAD = "slack:T0001:C0001:1700000900.000001"


async def best(step: Callable[[], Awaitable[None]], calls: int = 1000, rounds: int = 5) -> float:
    for _ in range(300):
        await step()
    fastest = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            await step()
        fastest = min(fastest, (time.process_time() - started) / calls)
    return fastest * 1e6


async def main() -> None:
    server = RedisServer()
    server.start()
    try:
        redis = connect_redis(server.url, cluster=False)
        await redis.xgroup_create("s", "g", id="0", mkstream=True)

        async def add() -> None:
            await redis.xadd("s", {"thread": THREAD})

        async def add_and_read() -> None:
            await add()
            assert await redis.xreadgroup("g", "c", {"s": ">"}, count=32, block=5000)

        print(f"XADD: {await best(add):.1f} us CPU")
        print(f"XADD + XREADGROUP BLOCK: {await best(add_and_read):.1f} us CPU")
        await redis.aclose()
    finally:
        server.close()


if __name__ == "__main__":
    run(main(), use_uvloop=True)
