"""Restarting `engage-bridge run` mid-conversation: every old thread answers on, history and all.

A real `run` process on zero configuration (embedded Redis and built-in emulator in a temp data
dir) with the playground, Slack over HTTP (signed events to /slack/events, Web API on the fake)
and Discord (gateway and REST on the fake; `bench.bridge_process` points discord.py at it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_wire import Json
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import EventSender, as_mention, envelope, user_message
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ENGAGE_BRIDGE = str(Path(sys.executable).parent / "engage-bridge")
APOLOGY = "Sorry, I could not answer"
# Generous: two shared cores, and the demo agent pauses ~1.2 s per answer to show its status.
ANSWER_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bridge:
    """Where the three platforms reach one `run` (the same port and data dir across restarts)."""

    cwd: Path
    env: dict[str, str]
    slack: FakeSlack
    discord: FakeDiscord
    web: httpx.AsyncClient
    events: EventSender
    names: dict[str, str] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.subprocess.Process]:
        before = set(self.discord.gateway.sessions)
        with (self.cwd / "run.log").open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.bridge_process",
                cwd=self.cwd,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(ANSWER_TIMEOUT):
                while b"Stop with Ctrl+C." not in (line := await process.stdout.readline()):
                    assert line, f"run exited: {(self.cwd / 'run.log').read_text()[-2000:]}"
                # Discord delivers only to a connected gateway session: wait for this run's.
                while not any(
                    s.live and sid not in before
                    for sid, s in list(self.discord.gateway.sessions.items())
                ):
                    await asyncio.sleep(0.05)
            yield process
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()

    async def stop(self, process: asyncio.subprocess.Process, how: signal.Signals) -> None:
        process.send_signal(how)
        async with asyncio.timeout(30):
            code = await process.wait()
        assert code == (-signal.SIGKILL if how is signal.SIGKILL else 0)


@pytest.fixture
async def bridge(
    tmp_path: Path, fake_slack: FakeSlack, fake_discord: FakeDiscord
) -> AsyncIterator[Bridge]:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "ENGAGE_BRIDGE_HTTP_PORT": str(port),
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_SIGNING_SECRET": fake_slack.signing_secret,
        "ENGAGE_BRIDGE_SLACK_API_URL": fake_slack.api_url,
        "DISCORD_BOT_TOKEN": fake_discord.token,
        "BENCH_FAKE_DISCORD_URL": fake_discord.url,
    }
    # A restart identifies again at once; Discord's own 5 s spacing is not what is tested here.
    fake_discord.gateway.identify_window = 0.0
    base = f"http://127.0.0.1:{port}"
    events = EventSender(f"{base}/slack/events", fake_slack.signing_secret)
    async with httpx.AsyncClient(base_url=base, timeout=10) as web:
        try:
            yield Bridge(tmp_path, env, fake_slack, fake_discord, web, events)
        finally:
            await events.aclose()


# One conversation per platform; each answer is the demo agent's "Turn N. ..." line.


@dataclass
class Threads:
    web: str = ""
    slack_ts: str = ""
    discord: str = ""


async def say_web(b: Bridge, threads: Threads, text: str, n: int) -> None:
    if not threads.web:
        threads.web = (await b.web.post("/playground/api/threads", json={})).json()["id"]
    say = {"client_id": f"web-{n}", "text": text}
    reply = await b.web.post(f"/playground/api/threads/{threads.web}/messages", json=say)
    assert reply.status_code == 200, reply.text


async def say_slack(b: Bridge, threads: Threads, text: str) -> None:
    if not threads.slack_ts:
        root = user_message(b.slack, text=f"<@{b.slack.bot_user_id}> {text}")
        threads.slack_ts = root["ts"]
        events = [root, as_mention(b.slack, root)]
    else:
        events = [user_message(b.slack, text=text, thread_ts=threads.slack_ts)]
    for event in events:
        assert (await b.events.send(envelope(b.slack, event))).status == 200


async def say_discord(b: Bridge, threads: Threads, user: Json, text: str) -> None:
    if not threads.discord:
        channel = b.discord.text_channel["id"]
        threads.discord = (await b.discord.post(channel, user, text, mention_bot=True))["id"]
    else:
        await b.discord.post(threads.discord, user, text)


def answers(b: Bridge, threads: Threads) -> dict[str, list[str]]:
    """Every agent/notice text posted so far, per platform (status messages left out)."""
    slack = [
        m["text"]
        for m in b.slack.posted("C0001")
        if m.get("thread_ts") == threads.slack_ts and m.get("user") == b.slack.bot_user_id
    ]
    discord = [m["content"] for m in b.discord.bot_messages(threads.discord)]
    return {
        "slack": [t for t in slack if "Turn " in t or APOLOGY in t],
        "discord": [t for t in discord if "Turn " in t or APOLOGY in t],
    }


async def web_answers(b: Bridge, threads: Threads) -> tuple[list[str], str]:
    poll = (await b.web.get(f"/playground/api/threads/{threads.web}")).json()
    texts = [e["text"] for e in poll["entries"] if e["role"] in ("agent", "notice")]
    return texts, str(poll["conversation_id"])


async def wait_answers(b: Bridge, threads: Threads, count: int) -> dict[str, list[str]]:
    async with asyncio.timeout(ANSWER_TIMEOUT):
        while True:
            seen = answers(b, threads)
            seen["web"] = (await web_answers(b, threads))[0]
            if all(len(texts) >= count for texts in seen.values()):
                return seen
            await asyncio.sleep(0.1)


async def converse(b: Bridge, threads: Threads, user: Json, turn: int) -> dict[str, list[str]]:
    first = turn == 1
    await say_web(b, threads, "Hi, my name is Ada" if first else f"Question {turn}?", turn)
    await say_slack(b, threads, "Hi, my name is Bea" if first else f"Question {turn}?")
    await say_discord(b, threads, user, "Hi, my name is Cy" if first else f"Question {turn}?")
    return await wait_answers(b, threads, turn)


async def maintenance(b: Bridge, *args: str) -> Any:
    """A maintenance command (its own embedded Redis once `run` is gone), JSON output."""
    process = await asyncio.create_subprocess_exec(
        ENGAGE_BRIDGE,
        *args,
        "--json",
        cwd=b.cwd,
        env=b.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


def assert_remembered(seen: dict[str, list[str]], turn: int) -> None:
    names = {"web": "Ada", "slack": "Bea", "discord": "Cy"}
    for platform, texts in seen.items():
        assert len(texts) == turn, (platform, texts)
        assert not any(APOLOGY in t for t in texts), (platform, texts)
        greeting = "Nice to meet you" if turn == 1 else "Nice to see you again"
        expected = f"Turn {turn}. {greeting}, {names[platform]}."
        assert texts[-1].startswith(expected), (platform, texts[-1])


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_each_old_thread_answers_on_in_the_same_conversation_after_a_restart(
    bridge: Bridge, how: signal.Signals
) -> None:
    threads, user = Threads(), bridge.discord.user("carol")
    async with bridge.running() as run:
        first = await converse(bridge, threads, user, 1)
        # Stopped as soon as the answers are out: the turns may not have let go of their threads.
        await bridge.stop(run, how)
    assert_remembered(first, 1)
    web_conversation = (await web_answers_offline(bridge, threads))[1]
    before = {
        t["thread_key"]: t["conversation_id"] for t in await maintenance(bridge, "threads", "list")
    }
    assert len(before) == 3, before

    async with bridge.running() as run:
        second = await converse(bridge, threads, user, 2)
        assert (await web_answers(bridge, threads))[1] == web_conversation
        await bridge.stop(run, signal.SIGTERM)
    assert_remembered(second, 2)

    after = {
        t["thread_key"]: t["conversation_id"] for t in await maintenance(bridge, "threads", "list")
    }
    assert after == before
    assert await maintenance(bridge, "dead-letters", "list") == []


async def web_answers_offline(b: Bridge, threads: Threads) -> tuple[list[str], str]:
    """The playground thread's conversation id as `history` reads it with no `run` up."""
    key = f"web:playground:local:{threads.web}"
    history = await maintenance(b, "history", key)
    return [m["content"] for m in history["messages"]], str(history["conversation_id"])


async def working(b: Bridge, threads: Threads) -> bool:
    """The playground thread shows the demo agent's status: its turn is under way."""
    poll = (await b.web.get(f"/playground/api/threads/{threads.web}")).json()
    return bool(poll["status_line"])


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_turns_cut_off_by_a_restart_are_answered_once_by_the_next_run(
    bridge: Bridge, how: signal.Signals
) -> None:
    await cut_off_then_answered(bridge, how)


async def test_on_an_external_redis_turns_cut_off_by_a_sigterm_are_taken_over_at_once(
    bridge: Bridge, redis_server: RedisServer
) -> None:
    # No restart takeover here (the next run cannot know the old one is gone): the stopping
    # run hands its threads back itself, or they would wait for the lease and the claim
    # (30 + 60 s, past ANSWER_TIMEOUT).
    redis = aioredis.Redis.from_url(redis_server.url)
    await redis.flushall()
    await redis.aclose()
    bridge.env["ENGAGE_BRIDGE_REDIS_URL"] = redis_server.url
    # The built-in emulator's run died with the stopped process (a real agent's would answer
    # on): the retried turn asks again after a second instead of the Engage timeout.
    bridge.env["ENGAGE_BRIDGE_AGENT_ANSWER_WAIT_SECONDS"] = "1"
    await cut_off_then_answered(bridge, signal.SIGTERM)


async def cut_off_then_answered(bridge: Bridge, how: signal.Signals) -> None:
    threads, user = Threads(), bridge.discord.user("carol")
    async with bridge.running() as run:
        assert_remembered(await converse(bridge, threads, user, 1), 1)
        await say_web(bridge, threads, "Question 2?", 2)
        await say_slack(bridge, threads, "Question 2?")
        await say_discord(bridge, threads, user, "Question 2?")
        async with asyncio.timeout(ANSWER_TIMEOUT):
            while not await working(bridge, threads):
                await asyncio.sleep(0.02)
        await bridge.stop(run, how)  # mid-turn: the threads' leases are held
    stored, _ = await web_answers_offline(bridge, threads)
    assert stored[-1] == "Question 2?"  # the stop cut its turn off: stored, not answered

    async with bridge.running() as run:
        second = await wait_answers(bridge, threads, 2)
        third = await converse(bridge, threads, user, 3)
        await bridge.stop(run, signal.SIGTERM)
    assert_remembered({p: t[:2] for p, t in second.items()}, 2)
    assert_remembered(third, 3)
    assert await maintenance(bridge, "dead-letters", "list") == []
