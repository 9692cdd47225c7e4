"""Socket Mode in three replicas: Slack spreads envelopes over their connections, nothing doubles.

Each replica is a whole bridge runtime (workers, real Bolt app, real aiohttp Socket Mode client)
sharing one Redis and one emulator; its listener reaches the inbox through `ReplicaInbox`, which
a test can hold (a slow replica) or kill (a process that stops mid-envelope).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import SlackAdapter, create_adapter
from bridge.adapter import Inbox
from bridge.errors import StorageUnavailable
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fakes.slack import Connection, Envelope, FakeSlack
from tests.fakes.slack_events import as_mention, envelope, user_message
from tests.fixtures_slack import e2e_settings

pytestmark = pytest.mark.slow

TOKEN = re.compile(r"\bt\d+m\d+\b")
CHANNEL = "C0001"
REPO = Path(__file__).resolve().parents[1]
RUN_BRIDGE = "import sys; from bridge.cli import main; sys.exit(main(['run']))"


class ReplicaInbox:
    """The shared inbox as one replica's listener sees it: can be held, or die mid-envelope."""

    def __init__(self, inner: Inbox) -> None:
        self._inner = inner
        self.gate: asyncio.Event | None = None
        self.seen: list[str] = []
        self._dead = False
        self.deaths = 0
        self._buried = asyncio.Event()

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.seen.append(message.text)
        if self.gate is not None:
            await self.gate.wait()
        if not self._dead:
            return await self._inner.submit(message)
        # A killed process stops anywhere: alternately before and after the message is stored.
        self.deaths += 1
        if self.deaths % 2 == 0:
            await self._inner.submit(message)
        await self._buried.wait()
        raise StorageUnavailable("this replica was killed")

    async def is_known_thread(self, key: ThreadKey) -> bool:
        return await self._inner.is_known_thread(key)

    def kill(self) -> None:
        self._dead = True

    def bury(self) -> None:
        self._buried.set()


@dataclass
class Replica:
    runtime: BridgeRuntime
    adapter: SlackAdapter
    inbox: ReplicaInbox
    listener: asyncio.Task[None]
    connection: Connection
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def kill(self) -> None:
        """Die abruptly: nothing more is stored or acked, the TCP link is cut, no reconnect."""
        self.inbox.kill()
        self.connection.abort()
        self.listener.cancel()
        await asyncio.gather(self.listener, return_exceptions=True)
        await self.stack.aclose()


@pytest.fixture
async def replicas(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> AsyncIterator[list[Replica]]:
    fake_slack.socket_mode.ack_timeout = 1.0
    fake_slack.socket_mode.retry_delays = (0.0,)
    started: list[Replica] = []
    try:
        for _ in range(3):
            started.append(await start_replica(fake_slack, emulator, redis_client))
        yield started
    finally:
        for replica in reversed(started):
            replica.inbox.bury()
            replica.listener.cancel()
            await asyncio.gather(replica.listener, return_exceptions=True)
            await replica.stack.aclose()


async def start_replica(slack: FakeSlack, engage: Any, redis: Any) -> Replica:
    settings = e2e_settings(
        slack, engage, socket_mode=True, lease_seconds=1.0, claim_idle_seconds=2.0
    )
    adapter = create_adapter(settings, redis)
    stack = AsyncExitStack()
    runtime = await stack.enter_async_context(
        BridgeRuntime(settings, adapters=[adapter], redis=redis, roles=frozenset({"workers"}))
    )
    inbox = ReplicaInbox(runtime.bridge)
    before = {c.number for c in slack.connections}
    listener = asyncio.create_task(adapter.run(inbox))
    await slack.wait_for(lambda: {c.number for c in slack.connections} - before != set())
    [connection] = [c for c in slack.connections if c.number not in before]
    return Replica(runtime, adapter, inbox, listener, connection, stack)


def token_texts(slack: FakeSlack, root_ts: str) -> list[str]:
    """The user tokens quoted by the bot's answers in one thread, in posting order."""
    replies = [m for m in slack.posted(CHANNEL) if m.get("thread_ts") == root_ts]
    return [tok for reply in replies for tok in TOKEN.findall(reply["text"])]


async def post_root(slack: FakeSlack, thread: int) -> tuple[str, list[Envelope]]:
    """A channel post mentioning the bot: Slack sends it as `message` and as `app_mention`."""
    text = f"<@{slack.bot_user_id}> t{thread}m0"
    message = user_message(slack, channel=CHANNEL, text=text)
    twins = [
        await slack.push(envelope(slack, event)) for event in (message, as_mention(slack, message))
    ]
    return str(message["ts"]), twins


async def post_follow_up(slack: FakeSlack, root_ts: str, thread: int, n: int) -> Envelope:
    event = user_message(slack, channel=CHANNEL, text=f"t{thread}m{n}", thread_ts=root_ts)
    return await slack.push(envelope(slack, event))


async def all_acked(envelopes: list[Envelope], timeout: float = 20.0) -> None:
    await asyncio.wait_for(asyncio.gather(*(e.acked.wait() for e in envelopes)), timeout)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def settle(slack: FakeSlack, replica: Replica, roots: list[str], messages: int) -> None:
    """Every thread has its answers and the shared queue is empty: late doubles would show."""

    async def done() -> bool:
        answered = all(len(token_texts(slack, ts)) >= messages for ts in roots)
        return answered and await replica.runtime.bridge.queue_depth() == 0

    await until(done)


def assert_each_answered_once_in_order(slack: FakeSlack, roots: list[str], messages: int) -> None:
    for thread, root_ts in enumerate(roots):
        assert token_texts(slack, root_ts) == [f"t{thread}m{n}" for n in range(messages)]


async def converse(
    slack: FakeSlack,
    threads: int,
    messages: int,
    between_rounds: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[list[str], list[Envelope]]:
    """Rounds of posts, one per thread each; a round starts once Slack has the last acked."""
    roots: list[str] = []
    pushed: list[Envelope] = []
    for thread in range(threads):
        root_ts, twins = await post_root(slack, thread)
        roots.append(root_ts)
        pushed.extend(twins)
    await all_acked(pushed)
    for n in range(1, messages):
        if between_rounds is not None:
            await between_rounds(n)
        round_ = [await post_follow_up(slack, roots[t], t, n) for t in range(threads)]
        pushed.extend(round_)
        await all_acked(round_)
    return roots, pushed


async def test_events_spread_over_three_replicas_are_answered_once_in_order(
    fake_slack: FakeSlack, replicas: list[Replica]
) -> None:
    roots, pushed = await converse(fake_slack, threads=9, messages=4)
    await settle(fake_slack, replicas[0], roots, 4)
    assert_each_answered_once_in_order(fake_slack, roots, 4)
    assert all(len(r.connection.delivered) >= 10 for r in replicas)
    assert all(len(r.inbox.seen) >= 10 for r in replicas)
    assert not any(e.given_up for e in pushed)


async def test_twins_and_a_retry_on_other_replicas_make_one_answer(
    fake_slack: FakeSlack, replicas: list[Replica]
) -> None:
    slow, other, third = replicas
    slow.inbox.gate = asyncio.Event()
    message = user_message(fake_slack, channel=CHANNEL, text=f"<@{fake_slack.bot_user_id}> t0m0")
    first = await fake_slack.push(envelope(fake_slack, message), to=slow.connection)
    twin = await fake_slack.push(
        envelope(fake_slack, as_mention(fake_slack, message)), to=other.connection
    )
    await all_acked([first, twin])  # the held replica never acked: a retry elsewhere did
    retry = first.deliveries[1]
    assert (retry.retry_attempt, first.deliveries[0].connection) == (1, slow.connection.number)
    assert retry.connection in (other.connection.number, third.connection.number)
    assert first.acked_on != slow.connection.number
    slow.inbox.gate.set()  # the slow replica finishes too, with a duplicate
    await fake_slack.wait_for(lambda: len(token_texts(fake_slack, message["ts"])) >= 1)
    await settle(fake_slack, slow, [message["ts"]], 1)
    assert slow.inbox.seen == ["t0m0"]
    assert token_texts(fake_slack, message["ts"]) == ["t0m0"]


async def test_a_replica_killed_mid_stream_loses_nothing_and_answers_nothing_twice(
    fake_slack: FakeSlack, replicas: list[Replica]
) -> None:
    doomed = replicas[2]

    async def kill_during_round_two(n: int) -> None:
        if n == 2:
            doomed.inbox.kill()  # envelopes already on their way to it die with it

    async def kill_when_it_has_envelopes() -> None:
        await fake_slack.wait_for(lambda: doomed.inbox.deaths >= 2)
        await doomed.kill()

    killer = asyncio.create_task(kill_when_it_has_envelopes())
    roots, pushed = await converse(
        fake_slack, threads=9, messages=4, between_rounds=kill_during_round_two
    )
    await asyncio.wait_for(killer, 10)
    await settle(fake_slack, replicas[0], roots, 4)
    assert_each_answered_once_in_order(fake_slack, roots, 4)
    retried = [
        e
        for e in pushed
        if any(d.connection == doomed.connection.number for d in e.deliveries[:-1])
    ]
    assert len(retried) >= 2
    assert all(e.acked_on != doomed.connection.number for e in retried)
    assert not any(e.given_up for e in pushed)


async def test_refresh_requested_during_traffic_loses_nothing(
    fake_slack: FakeSlack, replicas: list[Replica]
) -> None:
    fake_slack.socket_mode.disconnect_grace = 0.5
    refreshes: list[asyncio.Task[None]] = []

    async def refresh_one_replica_per_round(n: int) -> None:
        target = replicas[n - 1].connection
        refreshes.append(asyncio.create_task(fake_slack.disconnect("refresh_requested", target)))

    roots, pushed = await converse(
        fake_slack, threads=30, messages=4, between_rounds=refresh_one_replica_per_round
    )
    await asyncio.wait_for(asyncio.gather(*refreshes), 20)
    await settle(fake_slack, replicas[0], roots, 4)
    assert_each_answered_once_in_order(fake_slack, roots, 4)
    assert fake_slack.connections_opened >= 3 + 3 + 3  # start-up checks, first links, refreshes
    assert all(
        r.connection.number not in {c.number for c in fake_slack.connections} for r in replicas
    )
    assert len(fake_slack.connections) == 3
    assert not any(e.given_up for e in pushed)


@pytest.fixture
async def child_replica(
    fake_slack: FakeSlack, emulator: Any, redis_server: Any, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Connection]]:
    """`engage-bridge run` (every role) in its own process, as a third Socket Mode replica."""
    config = tmp_path / "bridge.toml"
    config.write_text('[routing]\ndefault_agent = "parrot"\n')
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_APP_TOKEN": fake_slack.app_token,
        "ENGAGE_BRIDGE_SLACK_API_URL": fake_slack.api_url,
        "ENGAGE_SMARTER_API_URL": emulator.url,
        "ENGAGE_SMARTER_API_KEY": emulator.api_key,
        "ENGAGE_SMARTER_ORG_ID": emulator.org_id,
        "PYTHONPATH": str(REPO),
        "ENGAGE_BRIDGE_REDIS_URL": redis_server.url,
        "ENGAGE_BRIDGE_CONFIG_FILE": str(config),
        "ENGAGE_BRIDGE_HTTP_PORT": "0",
        "ENGAGE_BRIDGE_WEB_ENABLED": "false",
        "ENGAGE_BRIDGE_LEASE_SECONDS": "1",
        "ENGAGE_BRIDGE_CLAIM_IDLE_SECONDS": "2",
        "ENGAGE_BRIDGE_WORKER_BLOCK_SECONDS": "0.2",
        "ENGAGE_BRIDGE_AGENT_BACKOFF_SECONDS": "0.05",
    }
    before = {c.number for c in fake_slack.connections}
    with (tmp_path / "child.log").open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", RUN_BRIDGE, env=env, stdout=log, stderr=log, cwd=tmp_path
        )
    try:
        await fake_slack.wait_for(
            lambda: {c.number for c in fake_slack.connections} - before != set(), timeout=20
        )
        [connection] = [c for c in fake_slack.connections if c.number not in before]
        yield child, connection
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def test_a_replica_process_sigkilled_mid_stream_loses_nothing_and_answers_nothing_twice(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any, child_replica: Any
) -> None:
    fake_slack.socket_mode.ack_timeout = 1.0
    fake_slack.socket_mode.retry_delays = (0.0,)
    child, connection = child_replica
    stack = AsyncExitStack()
    survivors = [await start_replica(fake_slack, emulator, redis_client) for _ in range(2)]
    for replica in survivors:
        stack.push_async_callback(replica.stack.aclose)
        stack.callback(replica.listener.cancel)
    async with stack:

        async def sigkill_in_round_two(n: int) -> None:
            if n == 2:
                # Stopped, the child cannot ack what it is sent next: the kill then always
                # leaves envelopes unacked, however fast it would have acked them.
                os.kill(child.pid, signal.SIGSTOP)
                delivered = len(connection.delivered)
                killer.append(asyncio.create_task(sigkill_after_delivery(delivered)))

        async def sigkill_after_delivery(delivered: int) -> None:
            await fake_slack.wait_for(lambda: len(connection.delivered) > delivered)
            child.kill()
            await child.wait()

        killer: list[asyncio.Task[None]] = []
        roots, pushed = await converse(
            fake_slack, threads=12, messages=4, between_rounds=sigkill_in_round_two
        )
        await asyncio.wait_for(asyncio.gather(*killer), 10)
        await settle(fake_slack, survivors[0], roots, 4)
        assert_each_answered_once_in_order(fake_slack, roots, 4)
        assert child.returncode == -signal.SIGKILL
        orphans = [e for e in pushed if e.deliveries[0].connection == connection.number]
        assert any(len(e.deliveries) > 1 for e in orphans)  # the kill left envelopes unacked
        assert not any(e.given_up for e in pushed)
