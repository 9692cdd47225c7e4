"""The hand-off: participation policy, dedupe and a durable per-thread enqueue, then scheduling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from bridge import keys
from bridge.codec import encode_message, text
from bridge.config import Settings
from bridge.errors import StorageUnavailable
from bridge.metrics import Metrics
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.policy import Action, decide
from bridge.scripts import Scripts
from bridge.threadmap import RedisClient, ThreadMap

log = logging.getLogger(__name__)


@asynccontextmanager
async def storage(operation: str) -> AsyncIterator[None]:
    """Translate Redis failures into StorageUnavailable, once, at the boundary."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StorageUnavailable(f"Redis unavailable during {operation}: {exc}") from exc


class InboxQueue:
    """`submit` returns only once the message is in Redis (or was a duplicate, or ignored)."""

    def __init__(
        self,
        redis: RedisClient,
        scripts: Scripts,
        threads: ThreadMap,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._threads = threads
        self._settings = settings
        self._metrics = metrics

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        """A conversation exists, or accepted messages wait for their first turn (which creates
        it): a follow-up sent before the first message was answered belongs to the thread too."""
        async with storage("is_known_thread"):
            return bool(await self._redis.exists(keys.record(thread), keys.inbox(thread)))

    async def submit(self, message: InboundMessage) -> SubmitResult:
        # One round trip: both keys share the thread's hash tag (one Cluster slot too).
        async with storage("submit"), self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.record(message.thread), "status")
            pipe.exists(keys.inbox(message.thread))
            raw_status, pending = await pipe.execute()
        status = text(raw_status) or None
        known = status is not None or bool(pending)
        file = self._settings.file
        decision = decide(message, known, status, file.policy, file.staff)
        if decision.action is Action.IGNORE:
            self._metrics.messages_in.labels(message.platform, "ignored").inc()
            return SubmitResult(False, decision.reason, {"outcome": "ignored"})
        stored = await self.enqueue(message)
        outcome = "accepted" if stored else "duplicate"
        self._metrics.messages_in.labels(message.platform, outcome).inc()
        if not stored:
            self._metrics.duplicates_dropped.labels(message.platform).inc()
            log.info(
                "duplicate delivery dropped",
                extra={"thread_key": str(message.thread), "message_id": message.message_id},
            )
            return SubmitResult(False, "duplicate delivery", {"outcome": "duplicate"})
        return SubmitResult(True, decision.reason, {"outcome": "accepted"})

    async def enqueue(self, message: InboundMessage) -> bool:
        """Dedupe-claim and push in one script, then schedule the thread. True if stored.

        A duplicate is scheduled too: had a crash come between the push and the schedule, the
        platform's redelivery is what puts the stranded message back in front of a worker.
        """
        thread = message.thread
        script_keys = [keys.seen(thread, message.message_id), keys.inbox(thread)]
        args: list[str | int] = [
            encode_message(message),
            keys.SEEN_TTL_SECONDS,
            keys.INBOX_TTL_SECONDS,
        ]
        async with storage("enqueue"):
            if isinstance(self._redis, RedisCluster):
                # The stream lives on another node: a pipeline could schedule before the push.
                stored = await self._push_then_schedule(thread, script_keys, args)
            else:
                stored = await self._enqueue_and_schedule(thread, script_keys, args)
        return bool(stored)

    async def _push_then_schedule(
        self, thread: ThreadKey, script_keys: list[str], args: list[str | int]
    ) -> Any:
        """Two round trips; the script is (re)loaded by redis-py when Redis lacks it."""
        stored = await self._scripts.enqueue(keys=script_keys, args=args)
        await self.schedule(thread)
        return stored

    async def _enqueue_and_schedule(
        self, thread: ThreadKey, script_keys: list[str], args: list[str | int]
    ) -> Any:
        """Push and schedule in one round trip; one connection keeps them in that order."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.evalsha(self._scripts.enqueue.sha, len(script_keys), *script_keys, *args)
            pipe.xadd(keys.READY_STREAM, {"thread": str(thread)})
            stored, scheduled = await pipe.execute(raise_on_error=False)
        if isinstance(stored, NoScriptError):  # first use after a Redis restart or flush
            return await self._push_then_schedule(thread, script_keys, args)
        for outcome in (stored, scheduled):
            if isinstance(outcome, Exception):
                raise outcome
        return stored

    async def schedule(self, thread: ThreadKey | str) -> None:
        async with storage("schedule"):
            await self._redis.xadd(keys.READY_STREAM, {"thread": str(thread)})

    async def depth(self) -> int:
        """Scheduling entries not yet processed (entries are deleted when done)."""
        async with storage("queue_depth"):
            depth = int(await self._redis.xlen(keys.READY_STREAM))
        self._metrics.queue_depth.set(depth)
        return depth
