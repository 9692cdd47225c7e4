"""Chaos run: thousands of threads through 3 bridge processes while everything around them fails.

Run: .venv/bin/python -m bench.chaos [--threads 2000] [--seed 7] [--deadline 540]
    [--discord-share 0.5] [--discord-shards 3]
Loopback only. A real redis-server (AOF, restarted once mid-run), the emulator in its own process
(agent `parrot`, faults switched every 2 s), the fake Slack (Web API; events POSTed signed to the
bridges' HTTP ports, spread over the 3 processes) and the fake Discord (REST + sharded gateway,
2 guilds per shard) in this process, and 3 `engage-bridge run` processes with every role, each
listening to its slice of the Discord shards. A share of the threads goes through Discord (a
mention, then follow-ups in the thread the bot opens). Injected: Slack retries
(X-Slack-Retry-Num) after 5xx / refused connections, delayed duplicate deliveries, the
app_mention + message twin of every first post, agent 5xx / 429 / lost responses / timeouts /
slow answers, Slack 429s on chat.postMessage, Discord 429s on message create, dropped Discord
gateway connections (RESUME replays already-seen events), a SIGKILL of a random bridge process
every few seconds (restarted at once; its shard is offline until the new process IDENTIFYs and
catches up through REST), one Redis restart.
Exits 1 if any user message was lost, answered twice or answered out of order.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench import chaos_discord
from bench.chaos_check import TOKEN, Verdict, judge, percentile, retried_turns, token
from bench.chaos_fleet import Emulator, Fleet, peak_rss_kib
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID
from bridge.store import keys
from bridge.turn import APOLOGY
from tests.fakes import slack as fake_slack_module
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import as_mention, envelope, sign, user_message
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer

CHANNELS = 50

# Agent fault modes, one at a time, each for a couple of seconds; None = calm.
FAULT_MODES: list[dict[str, Any] | None] = [
    None,
    {"scope": "chat", "rate": 0.1, "status": 503},
    {"scope": "chat", "rate": 0.1, "status": 429, "retry_after": 0.2},
    {"scope": "chat", "rate": 0.1, "status": 500},
    {"scope": "chat", "lose_response_next": 5, "status": 502},
    {"scope": "all", "rate": 0.05, "status": 503},
    {"scope": "chat", "agent_delay": 1.5},  # slow answers
    {"scope": "chat", "agent_delay": 8.0},  # longer than the client timeout: lost responses
    {"scope": "chat", "rate": 0.05, "status": 422},  # refused for good: apology + dead letter
]
CALM: dict[str, Any] = {
    "scope": "all", "rate": 0.0, "status": 503, "retry_after": None, "lose_response_next": 0,
    "agent_delay": 0.0,
}  # fmt: skip


@dataclass
class Stats:
    sent_at: dict[str, float] = field(default_factory=dict)
    thread_of: dict[str, str] = field(default_factory=dict)
    answered_at: dict[str, float] = field(default_factory=dict)
    ack_seconds: list[float] = field(default_factory=list)
    http: collections.Counter[str] = field(default_factory=collections.Counter)
    events: collections.Counter[str] = field(default_factory=collections.Counter)
    waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def saw_post(self, thread_id: str, body: str) -> None:
        """The bot posted `body` in the thread: stamp each token's first answer, wake waiters."""
        now = time.monotonic()
        if body == APOLOGY:
            self.release_thread(thread_id)
        for tok in TOKEN.findall(body):
            self.answered_at.setdefault(tok, now)
            waiter = self.waiters.get(tok)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def release_thread(self, thread_id: str) -> None:
        """An apology ends the closed loop's wait for the thread's texts (they were parked);
        the verdict still checks each text against the answers and the dead letters."""
        for tok, owner in self.thread_of.items():
            waiter = self.waiters.get(tok)
            if owner == thread_id and waiter is not None and not waiter.done():
                waiter.set_result(None)


class SlackDriver:
    """Posts Slack-signed Events API requests to any live bridge process, retrying like Slack."""

    def __init__(self, fake: FakeSlack, fleet: Fleet, stats: Stats, rng: random.Random, dup: float):
        self.fake, self.fleet, self.stats, self.rng, self.dup = fake, fleet, stats, rng, dup
        self.client = httpx.AsyncClient(timeout=15.0, limits=httpx.Limits(max_connections=400))
        self.background: set[asyncio.Task[None]] = set()

    async def deliver(self, body: dict[str, Any], retry: int = 0) -> None:
        raw = json.dumps(body).encode()
        attempt = retry
        while True:
            port = self.fleet.ports[self.rng.randrange(len(self.fleet.ports))]
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": sign(self.fake.signing_secret, stamp, raw),
            }
            if attempt:
                headers["X-Slack-Retry-Num"] = str(attempt)
                headers["X-Slack-Retry-Reason"] = "http_error"
            started = time.monotonic()
            try:
                url = f"http://127.0.0.1:{port}/slack/events"
                response = await self.client.post(url, content=raw, headers=headers)
                self.stats.http[str(response.status_code)] += 1
                if response.status_code == 200:
                    self.stats.ack_seconds.append(time.monotonic() - started)
                    break
            except httpx.HTTPError as exc:
                self.stats.http[type(exc).__name__] += 1
            attempt += 1
            self.stats.events["slack retries"] += 1
            await asyncio.sleep(min(2.0, 0.1 * attempt))
        if retry == 0 and self.rng.random() < self.dup:
            self.stats.events["delayed duplicate deliveries"] += 1
            task = asyncio.create_task(self._later(body, self.rng.uniform(0.0, 3.0)))
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _later(self, body: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        await self.deliver(body, retry=1)

    async def thread(self, n: int, messages: int, gap: float) -> None:
        channel = f"C{n % CHANNELS:04d}"
        user = f"U{n % 97:04d}"
        first = token(n, 0)
        event = user_message(
            self.fake, channel=channel, user=user, text=f"<@{self.fake.bot_user_id}> {first} hi"
        )
        thread_id = f"{channel}:{event['ts']}"
        self._sent(first, thread_id)
        # Slack sends both the message and its app_mention twin; they race to different replicas.
        await asyncio.gather(
            self.deliver(envelope(self.fake, event)),
            self.deliver(envelope(self.fake, as_mention(self.fake, event))),
        )
        for index in range(1, messages):
            await asyncio.sleep(self.rng.uniform(0.0, gap))
            tok = token(n, index)
            follow = user_message(
                self.fake, channel=channel, user=user, text=f"{tok} more", thread_ts=event["ts"]
            )
            self._sent(tok, thread_id)
            await self.deliver(envelope(self.fake, follow))

    def _sent(self, tok: str, thread_id: str) -> None:
        self.stats.sent_at[tok] = time.monotonic()
        self.stats.thread_of[tok] = thread_id
        self.stats.waiters[tok] = asyncio.get_running_loop().create_future()

    async def aclose(self) -> None:
        for task in list(self.background):
            task.cancel()
        await self.client.aclose()


def watch_answers(stats: Stats) -> None:
    """Stamp each token's first answer the moment the fake Slack stores the post."""
    original = fake_slack_module._HANDLERS["chat.postMessage"]

    def stamped(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = original(fake, args)
        body = str(args.get("markdown_text") or args.get("text") or "")
        stats.saw_post(f"{args.get('channel')}:{args.get('thread_ts')}", body)
        return result

    fake_slack_module._HANDLERS["chat.postMessage"] = stamped


def slack_answers(fake: FakeSlack) -> list[tuple[str, str]]:
    answers = []
    for channel in fake.messages:
        for message in fake.posted(channel):
            if message.get("thread_ts"):
                answers.append((f"{channel}:{message['thread_ts']}", str(message.get("text", ""))))
    return answers


class ChaosCluster(RedisCluster):
    """A 3-node cluster standing in for the single server: `restart` restarts one primary."""

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.nodes[0].process

    def restart(self) -> None:
        self.restart_node(1)


async def chaos(
    fleet: Fleet, emulator: Emulator, fake: FakeSlack, redis_server: RedisServer | ChaosCluster,
    rng: random.Random, args: argparse.Namespace, stats: Stats, sending_done: asyncio.Event,
    discord_faults: chaos_discord.DiscordFaults | None = None,
) -> None:  # fmt: skip
    """Faults on a clock until everything is sent and answered (the caller cancels this)."""
    started = time.monotonic()
    next_kill = started + args.kill_every
    next_fault = started
    next_slack_429 = started + 1.0
    restarted_redis = False
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            now = time.monotonic()
            fleet.sample()
            fleet.revive()
            if now >= next_kill and args.kill_every > 0:
                slot = fleet.kill_one(rng)
                stats.events[f"SIGKILL bridge-{slot}"] += 1
                next_kill = now + args.kill_every
            if now >= next_fault:
                mode = rng.choice(FAULT_MODES) if not sending_done.is_set() else None
                await client.put(f"{emulator.url}/_emulator/faults", json={**CALM, **(mode or {})})
                stats.events[f"agent faults: {json.dumps(mode)}"] += 1
                next_fault = now + 2.0
            # A new burst only once the last one was consumed, and only while many threads
            # post: a real rate limit spreads its 429s over the posters, while a forced burst
            # in a quiet moment would hit the one thread still posting again and again.
            busy = rate_limits_fair(stats, sending_done)
            if now >= next_slack_429 and busy and not fake.forced_failures_left("chat.postMessage"):
                fake.fail_next("chat.postMessage", times=2, status=429, retry_after=1)
                stats.events["Slack 429s on chat.postMessage"] += 2
                next_slack_429 = now + 3.0
            if discord_faults is not None:
                await discord_faults.tick(busy)
            sent_share = len(stats.sent_at) / (args.threads * args.messages)
            if not restarted_redis and sent_share >= 0.4:
                restarted_redis = True
                stats.events["Redis restarts"] += 1
                await asyncio.to_thread(redis_server.restart)
            await asyncio.sleep(0.25)


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="engage-chaos-"))
    stats = Stats()
    watch_answers(stats)
    redis_server: RedisServer | ChaosCluster = ChaosCluster() if args.cluster else RedisServer()
    redis_server.start()
    emulator = Emulator(workdir)
    fake = FakeSlack()
    await fake.start()
    config = workdir / "bridge.toml"
    config.write_text('[routing]\ndefault_agent = "parrot"\n')
    env = {
        "ENGAGE_SMARTER_API_URL": emulator.url,
        "ENGAGE_SMARTER_API_KEY": DEFAULT_API_KEY,
        "ENGAGE_SMARTER_ORG_ID": DEFAULT_ORG_ID,
        "ENGAGE_BRIDGE_ENGAGE_TIMEOUT_SECONDS": "5",
        "ENGAGE_BRIDGE_REDIS_URL": redis_server.url,
        "ENGAGE_BRIDGE_REDIS_CLUSTER": "true" if args.cluster else "false",
        "ENGAGE_BRIDGE_WEB_ENABLED": "false",
        "ENGAGE_BRIDGE_CONFIG_FILE": str(config),
        "ENGAGE_BRIDGE_LEASE_SECONDS": "5",
        "ENGAGE_BRIDGE_CLAIM_IDLE_SECONDS": "8",
        "ENGAGE_BRIDGE_WORKER_BLOCK_SECONDS": "1",
        "ENGAGE_BRIDGE_AGENT_ATTEMPTS": str(args.agent_attempts),
        "ENGAGE_BRIDGE_TURN_MAX_ATTEMPTS": str(args.max_attempts),
        "ENGAGE_BRIDGE_AGENT_BACKOFF_SECONDS": "0.2",
        "ENGAGE_BRIDGE_AGENT_BACKOFF_MAX_SECONDS": "2",
        "ENGAGE_BRIDGE_LOG_LEVEL": args.log_level,
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": fake.signing_secret,
        "ENGAGE_BRIDGE_SLACK_API_URL": fake.api_url,
    }
    per_slot: list[dict[str, str]] = [{} for _ in range(args.processes)]
    fake_discord = None
    if args.discord_share > 0:
        fake_discord = await chaos_discord.start_fake(args.discord_shards)
        chaos_discord.watch_answers(fake_discord, stats)
        env.update(chaos_discord.env(fake_discord))
        per_slot = [
            chaos_discord.slot_env(args.discord_shards, slot, args.processes)
            for slot in range(args.processes)
        ]
    fleet = Fleet(args.processes, env, workdir, per_slot)
    driver = SlackDriver(fake, fleet, stats, rng, args.duplicates)
    discord_rng = random.Random(args.seed + 1)
    redis: Any = (
        aioredis.RedisCluster.from_url(redis_server.url)
        if args.cluster
        else aioredis.Redis.from_url(redis_server.url)
    )
    deadline = time.monotonic() + args.deadline
    sending_done = asyncio.Event()
    chaos_task: asyncio.Task[None] | None = None
    print(f"chaos run: seed {args.seed}, {args.threads} threads x {args.messages} messages, "
          f"{args.processes} bridge processes, logs in {workdir}", flush=True)  # fmt: skip
    try:
        await emulator.ready()
        await fleet.start_all()
        discord_driver = discord_faults = None
        if fake_discord is not None:
            await chaos_discord.all_shards_live(fake_discord, args.discord_shards, timeout=90)
            discord_driver = chaos_discord.DiscordDriver(fake_discord, stats, discord_rng)
            discord_faults = chaos_discord.DiscordFaults(fake_discord, discord_rng, stats.events)
        run_started = time.monotonic()
        chaos_task = asyncio.create_task(
            chaos(fleet, emulator, fake, redis_server, rng, args, stats, sending_done,
                  discord_faults)
        )  # fmt: skip
        slots = asyncio.Semaphore(args.in_flight)

        async def one_thread(n: int) -> None:
            async with slots:
                if discord_driver is not None and discord_rng.random() < args.discord_share:
                    await discord_driver.thread(n, args.messages, args.gap, deadline)
                else:
                    await driver.thread(n, args.messages, args.gap)
                waiters = (stats.waiters.get(token(n, i)) for i in range(args.messages))
                mine = [w for w in waiters if w is not None]
                # Closed loop: a thread holds its slot until answered, bounding the backlog; the
                # wait is bounded too, so one unresolved waiter cannot stretch the whole run (the
                # verdict below reads the fakes' final state, not these waiters).
                wait = min(args.thread_wait, deadline - time.monotonic())
                await asyncio.wait(mine, timeout=max(1.0, wait))

        sender = asyncio.gather(*(one_thread(n) for n in range(args.threads)))
        try:
            await asyncio.wait_for(sender, timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            print("deadline passed before every thread was sent and answered", flush=True)
        sending_done.set()

        async def current() -> tuple[Verdict, dict[bytes, bytes]]:
            answers = slack_answers(fake)
            if fake_discord is not None:
                answers += chaos_discord.answers(fake_discord)
            dead = await redis.hgetall(keys.DEAD_LETTERS)
            return judge(stats.thread_of, answers, parked_texts(dead.values()), APOLOGY), dead

        # Until every text is answered or parked (bounded by the deadline), then let delayed
        # duplicates land so that a double answer would still show.
        while time.monotonic() < deadline and (await current())[0].lost:
            await asyncio.sleep(1.0)
        settle = min(deadline, time.monotonic() + args.settle)
        while time.monotonic() < settle:
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - run_started
        chaos_task.cancel()
        fleet.sample()
        verdict, dead = await current()
        report(verdict, stats, fleet, emulator, redis_server, dead, elapsed, args)
        if fake_discord is not None:
            print(chaos_discord.summary(fake_discord, stats.thread_of), flush=True)
        show_threads(fake, stats, verdict.twice[:3] + verdict.order_violations[:3])
        await show_redis_state(redis, stats, verdict.lost[:5])
        return 0 if verdict.ok else 1
    finally:
        if chaos_task is not None:
            chaos_task.cancel()
        await driver.aclose()
        await redis.aclose()
        fleet.stop()
        emulator.stop()
        await fake.aclose()
        if fake_discord is not None:
            await fake_discord.close()
        redis_server.close()


def show_threads(fake: FakeSlack, stats: Stats, tokens: list[str]) -> None:
    """Every post in the threads of `tokens` (user and bot), for diagnosing a failure."""
    for tok in tokens:
        channel, ts = stats.thread_of[tok].split(":")
        print(f"-- thread {channel}:{ts} (for {tok})")
        for m in sorted(fake.messages.get(channel, []), key=lambda m: float(m["ts"])):
            if m["ts"] == ts or m.get("thread_ts") == ts:
                key = (m.get("metadata") or {}).get("event_payload", {}).get("key", "")
                who = "bot " if m.get("bot_id") else "user"
                print(f"   {m['ts']} {who} {m.get('text', '')!r} {key}")


async def show_redis_state(redis: aioredis.Redis, stats: Stats, tokens: list[str]) -> None:
    """What Redis still holds for the threads of unanswered texts: waiting or truly lost?"""
    if not tokens:
        return
    ready = await redis.xlen(keys.READY_STREAM)
    try:
        pending = await redis.xpending(keys.READY_STREAM, keys.WORKER_GROUP)
    except aioredis.ResponseError:
        pending = {}
    print(f"-- ready stream: {ready} entries, pending {pending}")
    entries = await redis.xrange(keys.READY_STREAM)
    for tok in tokens:
        ts = stats.thread_of[tok].split(":")[1]
        found = sorted([k.decode() async for k in redis.scan_iter(match=f"*{ts}*")])
        print(f"-- redis for {tok} (thread ts {ts}):")
        for key in found:
            kind = (await redis.type(key)).decode()
            ttl = await redis.pttl(key)
            size = {"list": redis.llen, "hash": redis.hlen}.get(kind)
            extra = f" len {await size(key)}" if size else ""
            print(f"   {key} {kind}{extra} pttl {ttl}")
            if key.endswith(":inbox"):
                for raw in await redis.lrange(key, 0, -1):
                    print(f"     inbox: {TOKEN.findall(raw.decode())}")
        mentions = [eid.decode() for eid, fields in entries if ts.encode() in b"".join(
            k + v for k, v in fields.items())]  # fmt: skip
        print(f"   ready-stream entries naming the thread: {mentions}")


BUSY_TEXTS = 50
"""Forced 429 bursts only while at least this many texts wait for an answer."""


def rate_limits_fair(stats: Stats, sending_done: asyncio.Event) -> bool:
    waiting = len(stats.sent_at) - len(stats.answered_at)
    return not sending_done.is_set() and waiting >= BUSY_TEXTS


def parked_texts(letters: Iterable[bytes]) -> dict[str, str]:
    """Token -> error of the dead letter holding it."""
    parked: dict[str, str] = {}
    for raw in letters:
        letter = json.loads(raw)
        for message in letter["messages"]:
            for tok in TOKEN.findall(str(message.get("text", ""))):
                parked[tok] = str(letter["error"])
    return parked


def bridge_log_lines(fleet: Fleet) -> Iterator[str]:
    for path in sorted(fleet.workdir.glob("bridge-*.log")):
        with path.open(errors="replace") as lines:
            yield from lines


def report(
    verdict: Verdict, stats: Stats, fleet: Fleet, emulator: Emulator,
    redis_server: RedisServer | ChaosCluster,
    dead: dict[bytes, bytes], elapsed: float, args: argparse.Namespace,
) -> None:  # fmt: skip
    own_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    e2e = [stats.answered_at[t] - stats.sent_at[t] for t in stats.sent_at if t in stats.answered_at]
    reasons = collections.Counter(json.loads(raw)["error"][:120] for raw in dead.values())
    lines = [
        f"elapsed: {elapsed:.1f} s",
        f"messages sent: {verdict.sent} in {len(set(stats.thread_of.values()))} threads",
        f"answered: {verdict.answered} ({verdict.coalesced_answers} answers covered several "
        "messages)",
        f"lost: {len(verdict.lost)} {verdict.lost[:10]}",
        f"answered twice: {len(verdict.twice)} {verdict.twice[:10]}",
        f"order violations within a thread: {len(verdict.order_violations)} "
        f"{verdict.order_violations[:10]}",
        f"answers to unknown texts: {len(verdict.strangers)}",
        f"dead letters: {len(dead)} {dict(reasons)}",
        f"texts dead-lettered by a permanent agent error (explained, apology posted): "
        f"{len(verdict.parked_permanent)}; by anything else (unexplained): "
        f"{len(verdict.parked_unexplained)} {verdict.parked_unexplained[:10]}; "
        f"both answered and dead-lettered: {len(verdict.answered_and_parked)}; "
        f"dead-lettered without an apology in the thread: {len(verdict.parked_without_apology)}",
        f"end-to-end latency: p50 {percentile(e2e, 0.5):.2f} s, p99 {percentile(e2e, 0.99):.2f} s",
        f"Slack ack latency (HTTP 200): p50 {percentile(stats.ack_seconds, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(stats.ack_seconds, 0.99) * 1000:.0f} ms "
        f"over {len(stats.ack_seconds)} acks",
        f"HTTP outcomes of event deliveries: {dict(stats.http)}",
        f"bridge processes: {fleet.starts} starts, {fleet.kills} SIGKILLs, "
        f"{fleet.crashes} exits on their own (restarted)",
        "peak RSS: "
        + ", ".join(f"bridge-{i} {kib / 1024:.0f} MiB" for i, kib in enumerate(fleet.peak_kib))
        + f", emulator {peak_rss_kib(emulator.process.pid) / 1024:.0f} MiB"
        + (f", redis {peak_rss_kib(redis_server.process.pid) / 1024:.0f} MiB"
           if redis_server.process else "")
        + f", orchestrator (fakes) {own_kib / 1024:.0f} MiB",
        "injected: " + "; ".join(f"{k}: {v}" for k, v in sorted(stats.events.items())),
        f"turns started again (attempt number: count; poison limit {args.max_attempts}): "
        f"{retried_turns(bridge_log_lines(fleet))}",
    ]  # fmt: skip
    print("\n".join(lines), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2000)
    parser.add_argument("--cluster", action="store_true", help="a 3-node Redis Cluster")
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deadline", type=float, default=540.0, help="hard limit, seconds")
    parser.add_argument("--in-flight", type=int, default=120, help="threads open at once")
    parser.add_argument("--gap", type=float, default=0.5, help="max pause between a thread's posts")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share redelivered later")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds; 0 = never")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument(
        "--thread-wait", type=float, default=120.0, help="longest a thread holds its slot"
    )
    parser.add_argument("--agent-attempts", type=int, default=8)
    # The poison limit: turns started on one batch that died with their worker. Production keeps
    # 5; here a process is SIGKILLed every 5 s (each lives ~15 s) while a turn under the injected
    # faults takes 5-30 s, so 5 deaths in a row of a healthy batch happen about once a run.
    parser.add_argument("--max-attempts", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING", help="the bridge processes' log level")
    parser.add_argument("--discord-share", type=float, default=0.5, help="0 = Slack only")
    parser.add_argument("--discord-shards", type=int, default=3, help="dealt over the processes")
    args = parser.parse_args()
    return asyncio.run(asyncio.wait_for(run(args), timeout=args.deadline + 60))


if __name__ == "__main__":
    sys.exit(main())
