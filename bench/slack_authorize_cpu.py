"""CPU per Bolt authorization of an event in Slack OAuth mode, bot_only off (A) and on (B).

    .venv/bin/python -m bench.slack_authorize_cpu A B A B

`adapters/slack/authorize.FirstAskShared` over `RedisInstallationStore` on a real redis-server
(auto-pipelined client, as the bridge connects), the token's `auth.test` answer already cached
as after a workspace's first event, the sender not the installer (most events): what Bolt's
authorization middleware costs per event, 50 at once. A reads the workspace's installation and
then the sender's own (Bolt's default); B reads the bot only. Prints us of CPU per call.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.authorize import FirstAskShared
from adapters.slack.installations import RedisInstallationStore
from bridge.redisconn import connect_redis
from tests.redis_server import RedisServer

CALLS, AT_ONCE, TOKEN = 3000, 50, "xoxb-bench"


async def per_call(url: str, *, bot_only: bool) -> float:
    redis = connect_redis(url, cluster=False)
    store = RedisInstallationStore(redis)
    installer = Installation(
        app_id="A1", team_id="T1", user_id="U0INSTALLER", bot_token=TOKEN,
        bot_id="B1", bot_user_id="UB1", bot_scopes=["chat:write"],
    )  # fmt: skip
    await store.async_save(installer)
    authorize = FirstAskShared(
        installation_store=store,
        client_id="c",
        client_secret="s",  # noqa: S106 (never sent: auth.test is cached)
        bot_only=bot_only,
        logger=logging.getLogger("bench"),
    )
    authorize.authorize_result_cache[TOKEN] = AuthorizeResult(
        enterprise_id=None, team_id="T1", bot_token=TOKEN, bot_user_id="UB1", bot_id="B1"
    )
    authorize._tokens[(None, "T1", False)] = TOKEN
    client = AsyncWebClient()

    async def event() -> None:
        context = AsyncBoltContext(client=client)
        context["is_enterprise_install"] = False
        result = await authorize(context=context, enterprise_id=None, team_id="T1", user_id="U1")
        assert result is not None
        assert result.bot_token == TOKEN

    for _ in range(200):
        await event()
    start = time.process_time()
    for _ in range(CALLS // AT_ONCE):
        await asyncio.gather(*(event() for _ in range(AT_ONCE)))
    spent = time.process_time() - start
    await redis.aclose()
    return spent / CALLS * 1e6


async def main(labels: list[str]) -> None:
    server = RedisServer()
    server.start()
    try:
        for label in labels:
            us = await per_call(server.url, bot_only=label == "B")
            print(f"{label} (bot_only={label == 'B'}): {us:.1f} us CPU per authorization")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["A", "B", "A", "B"]))
