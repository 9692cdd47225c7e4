"""The Slack HTTP ingress alone in a process, for peak-RSS measurements: prints its port.

`python -m tests.ingress_process SIGNING_SECRET`: the real SlackAdapter route behind the
bridge's app (guard included) on an ephemeral loopback port; nothing is ever stored.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from adapters.slack import SlackAdapter
from adapters.slack.settings import SlackSettings
from bridge.config import Settings
from bridge.http import HttpServer, create_app
from bridge.metrics import Metrics
from bridge.models import InboundMessage, SubmitResult, ThreadKey


class NoInbox:
    async def submit(self, message: InboundMessage) -> SubmitResult:
        return SubmitResult(accepted=False, reason="measuring only")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return False


async def ready() -> dict[str, str]:
    return {}


async def main(secret: str) -> None:
    slack = SlackSettings(
        _env_file=None,
        bot_token="xoxb-measuring-only",
        signing_secret=secret,
        api_url="http://127.0.0.1:9/api/",
    )
    settings = Settings([slack], _env_file=None, config_file=None)
    # Never connected: nothing reaches Redis on the paths measured.
    adapter = SlackAdapter(settings, aioredis.Redis.from_url("redis://127.0.0.1:9"))
    app = create_app(metrics=Metrics(), readiness=ready, routes=adapter.routes(NoInbox()))
    server = HttpServer("127.0.0.1", 0)
    await server.start(app)
    print(server.port, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
