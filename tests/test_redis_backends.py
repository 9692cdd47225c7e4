"""The core pipeline runs unchanged on a single Redis and on a real 3-node Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.adapter import Inbox
from bridge.config import FileConfig, Routing, Settings
from bridge.core import Bridge
from bridge.engage.client import EngageClient
from bridge.errors import StorageUnavailable
from bridge.metrics import Metrics
from bridge.models import InboundMessage, Reply, ThreadKey
from bridge.redisconn import connect_redis
from bridge.store import Hold
from bridge.threadmap import RedisClient
from tests.fixtures_emulator import hold_answers, release_answers
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer

THREADS = 8
MESSAGES_PER_THREAD = 3
BRIDGES = 2
PARROT_PREFIX = "You said: "


class SharedPosts:
    """Adapters of every bridge post here, as they would into one real Slack workspace."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []

    def by_thread(self) -> dict[ThreadKey, list[Reply]]:
        grouped: dict[ThreadKey, list[Reply]] = {}
        for reply in self.replies:
            grouped.setdefault(reply.thread, []).append(reply)
        return grouped


class PostingAdapter:
    name = "console"

    def __init__(self, posts: SharedPosts) -> None:
        self._posts = posts

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        await asyncio.Event().wait()

    async def send(self, reply: Reply) -> str:
        self._posts.replies.append(reply)
        return f"post-{len(self._posts.replies)}"

    async def aclose(self) -> None:
        return None


@pytest.fixture(params=["single", "cluster"])
async def shared_redis(request: pytest.FixtureRequest) -> AsyncIterator[RedisClient]:
    """A client made the way `engage-bridge run` makes it (bridge.redisconn.connect_redis)."""
    client: RedisClient
    if request.param == "single":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = connect_redis(server.url, cluster=False)
        await client.flushall()
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        client = connect_redis(cluster.url, cluster=True)
        assert isinstance(client, aioredis.RedisCluster)
        await client.flushall(target_nodes=aioredis.RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


def bridge_settings(emulator: Any, *, cluster: bool) -> Settings:
    return Settings(
        _env_file=None,
        engage_api_url=emulator.url,
        engage_api_key=emulator.api_key,
        engage_org_id=emulator.org_id,
        redis_cluster=cluster,
        lease_seconds=1.0,
        claim_idle_seconds=2.0,
        worker_block_seconds=0.2,
        worker_concurrency=8,
        agent_backoff_seconds=0.01,
        agent_backoff_max_seconds=0.05,
        file=FileConfig(routing=Routing(default_agent="parrot")),
    )


def inbound(thread: ThreadKey, index: int) -> InboundMessage:
    return InboundMessage(
        thread=thread,
        message_id=f"{thread.thread}-m{index}",
        user_id="U1",
        text=f"{thread.thread} message {index}",
        sent_at=datetime.now(UTC),
        is_dm=True,
    )


def answered_texts(replies: list[Reply]) -> list[str]:
    """Parrot answers a batch as `You said: a\\nb`: unfold every reply into what it echoed."""
    texts: list[str] = []
    for reply in replies:
        assert reply.text.startswith(PARROT_PREFIX), reply.text
        texts.extend(reply.text.removeprefix(PARROT_PREFIX).split("\n"))
    return texts


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


async def test_bridges_sharing_redis_answer_each_message_once_in_order_and_rebuild_the_map(
    shared_redis: RedisClient, emulator: Any
) -> None:
    cluster = isinstance(shared_redis, aioredis.RedisCluster)
    settings = bridge_settings(emulator, cluster=cluster)
    posts = SharedPosts()
    clients = [
        EngageClient(base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id)
        for _ in range(BRIDGES)
    ]
    bridges = [
        Bridge(
            settings=settings,
            redis=shared_redis,
            engage=client,
            adapters={"console": PostingAdapter(posts)},
            metrics=Metrics(),
            consumer_name=f"bridge-{n}",
        )
        for n, client in enumerate(clients)
    ]
    threads = [ThreadKey("console", "W1", "C1", f"t{n}") for n in range(THREADS)]
    expected = {t: [inbound(t, i).text for i in range(MESSAGES_PER_THREAD)] for t in threads}
    workers = [asyncio.create_task(bridge.run_workers()) for bridge in bridges]
    try:
        for index in range(MESSAGES_PER_THREAD):
            for n, thread in enumerate(threads):
                receiving = bridges[(n + index) % BRIDGES]
                assert (await receiving.submit(inbound(thread, index))).accepted
                # The platform's redelivery reaches the other bridge and must be dropped.
                duplicate = bridges[(n + index + 1) % BRIDGES]
                assert not (await duplicate.submit(inbound(thread, index))).accepted

        def all_answered() -> bool:
            done = posts.by_thread()
            return all(len(answered_texts(done.get(t, []))) >= MESSAGES_PER_THREAD for t in threads)

        await wait_for(all_answered, timeout=30)

        # Every scheduling entry is deleted once its thread is done: nothing left to post twice.
        async def queue_drained() -> bool:
            return await bridges[0].queue_depth() == 0

        await wait_for(queue_drained, timeout=10)
        mapped = await bridges[0].threads.list()
        # Losing the map (no backup) is repaired from the conversations' data.thread_key.
        for record in mapped:
            assert await bridges[0].threads.forget(record.thread_key)
        assert await bridges[1].threads.list() == []
        assert await bridges[1].rebuild_map() == THREADS
        rebuilt = await bridges[0].threads.list()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for client in clients:
            await client.aclose()

    by_thread = posts.by_thread()
    assert set(by_thread) == set(threads)
    for thread in threads:
        assert answered_texts(by_thread[thread]) == expected[thread]
    keys = [reply.idempotency_key for reply in posts.replies]
    assert len(keys) == len(set(keys))
    conversations = list(emulator.state.conversations.values())
    assert sorted(c.data["thread_key"] for c in conversations) == sorted(map(str, threads))
    assert {c.source for c in conversations} == {"console"}
    assert sorted(r.thread_key for r in mapped) == sorted(map(str, threads))
    assert {r.conversation_id for r in mapped} == {c.id for c in conversations}
    assert {(r.thread_key, r.conversation_id) for r in rebuilt} == {
        (r.thread_key, r.conversation_id) for r in mapped
    }


async def test_a_thread_whose_bridge_dies_mid_turn_is_answered_once_by_another(
    shared_redis: RedisClient, emulator: Any
) -> None:
    hold_answers(emulator)  # the doomed bridge's agent is still at work when the bridge dies
    settings = bridge_settings(emulator, cluster=isinstance(shared_redis, aioredis.RedisCluster))
    posts = SharedPosts()
    clients = [
        EngageClient(base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id)
        for _ in range(2)
    ]
    doomed, survivor = (
        Bridge(
            settings=settings,
            redis=shared_redis,
            engage=client,
            adapters={"console": PostingAdapter(posts)},
            metrics=Metrics(),
            consumer_name=name,
        )
        for name, client in zip(("doomed", "survivor"), clients, strict=True)
    )
    thread = ThreadKey("console", "W1", "C-slow", "t-crash")

    async def killed(hold: Hold) -> None:
        raise StorageUnavailable("SIGKILLed: nothing is handed back")

    # A stopping worker hands its threads back; a killed one cannot.
    doomed.store.threads.hand_back = killed  # type: ignore[method-assign]
    doomed_task = asyncio.create_task(doomed.run_workers())
    survivor_task: asyncio.Task[None] | None = None
    try:
        assert (await doomed.submit(inbound(thread, 0))).accepted
        await wait_for(lambda: emulator.faults.answers_held == 1, timeout=10)
        doomed_task.cancel()  # its lease and scheduling entry are left behind, as by SIGKILL
        await asyncio.gather(doomed_task, return_exceptions=True)
        release_answers(emulator)
        survivor_task = asyncio.create_task(survivor.run_workers())
        await wait_for(lambda: len(posts.replies) >= 1, timeout=20)

        async def queue_drained() -> bool:
            return await survivor.queue_depth() == 0

        await wait_for(queue_drained, timeout=10)
    finally:
        for task in (doomed_task, survivor_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for client in clients:
            await client.aclose()

    assert answered_texts(posts.replies) == [inbound(thread, 0).text]
    assert len(emulator.state.conversations) == 1
    recovered = survivor.metrics.registry.get_sample_value("bridge_threads_recovered_total")
    assert recovered is not None
    assert recovered >= 1
