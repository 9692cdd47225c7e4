"""A minimal Slack-to-Engage bot: the achievable ceiling for the bridge's benchmarks.

Run: python -m bench.reference_bot --port P --slack-api URL --engage URL
It does only what a turn needs on the same fakes: verify the signature, ack, show a status,
create the conversation (kept in a dict), chat (non-streaming), post the answer. No Redis, no
durability, no retries, no dedupe: what the bridge costs beyond this is the price of its promises.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from bench import lean_slack
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID


class ReferenceBot:
    def __init__(self, slack_api: str, engage_url: str, agent: str) -> None:
        self.slack_api = slack_api
        self.engage_url = engage_url.rstrip("/")
        self.agent = agent
        self.conversations: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def events(self, request: web.Request) -> web.Response:
        raw = await request.read()
        stamp = request.headers.get("X-Slack-Request-Timestamp", "0")
        expected = (
            "v0="
            + hmac.new(
                lean_slack.SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + raw, hashlib.sha256
            ).hexdigest()
        )
        signature = request.headers.get("X-Slack-Signature", "")
        if abs(time.time() - int(stamp)) > 300 or not hmac.compare_digest(expected, signature):
            return web.Response(status=401)
        body = json.loads(raw)
        event = body.get("event") or {}
        if event.get("type") == "message" and not event.get("bot_id"):
            task = asyncio.create_task(self.turn(body["team_id"], event))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.Response(text="")

    async def slack(self, method: str, **args: Any) -> dict[str, Any]:
        assert self.session is not None
        headers = {"Authorization": f"Bearer {lean_slack.BOT_TOKEN}"}
        async with self.session.post(self.slack_api + method, json=args, headers=headers) as r:
            result: dict[str, Any] = await r.json()
            return result

    async def engage(self, path: str, body: Any, **params: str) -> Any:
        assert self.session is not None
        headers = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID}
        url = self.engage_url + path
        async with self.session.post(url, json=body, params=params, headers=headers) as r:
            r.raise_for_status()
            return await r.json()

    async def turn(self, team: str, event: dict[str, Any]) -> None:
        channel, ts = event["channel"], event.get("thread_ts") or event["ts"]
        status = self.slack(
            "assistant.threads.setStatus", channel_id=channel, thread_ts=ts, status="Thinking…"
        )
        key = f"{team}:{channel}:{ts}"
        cid = self.conversations.get(key)
        if cid is None:
            data = {"thread_key": key, "user_id": event.get("user")}
            created, _ = await asyncio.gather(
                self.engage("/v1/conversations", {"data": data, "source": "slack"}), status
            )
            cid = self.conversations[key] = created["id"]
        else:
            await status
        messages = [{"role": "user", "content": event.get("text", ""), "name": None}]
        answers = await self.engage(
            f"/v1/conversations/{cid}/chat", {"messages": messages}, agent=self.agent
        )
        for answer in answers:
            if answer["role"] == "agent":
                await self.slack(
                    "chat.postMessage",
                    channel=channel,
                    thread_ts=ts,
                    markdown_text=answer["content"],
                )


async def main(args: argparse.Namespace) -> None:
    bot = ReferenceBot(args.slack_api, args.engage, args.agent)
    await bot.start()
    app = web.Application()
    app.router.add_post("/slack/events", bot.events)
    app.router.add_get("/healthz", lambda _: web.json_response({"status": "ok"}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    if os.environ.get("BENCH_TURN_TRACE"):
        from bench.turn_trace import install_reference

        install_reference(os.environ["BENCH_TURN_TRACE"], sys.modules[__name__])
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slack-api", required=True)
    parser.add_argument("--engage", required=True)
    parser.add_argument("--agent", default="parrot")
    asyncio.run(main(parser.parse_args()))
