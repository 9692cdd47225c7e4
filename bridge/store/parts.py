"""Posting a reply in parts exactly once: each part's record next to the core's posted ledger.

An adapter that posts a reply as several platform messages (Slack) records each part once posted
and marks it pending just before, so a retried reply skips the parts the platform has and looks up
a part left pending (the process died between posting and recording). The part records live in
the thread's slot next to the posted ledger (keys.posted), so the step that checks a part also
checks the whole reply, and the step that records the last part records the reply: the core's
check before and record after a send are part of these two round trips.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage

# KEYS: parts, posted. ARGV: reply key, part field, ttl. -> {platform id or '', PartState}.
# Marking pending in the step that found nothing: a look-up is needed only after a crash.
CLAIM_PART = """
local reply = redis.call('HGET', KEYS[2], ARGV[1])
if reply then
  return {reply, 0}
end
local part = redis.call('HGET', KEYS[1], ARGV[2])
if part then
  return {part, 1}
end
if redis.call('HSETNX', KEYS[1], 'pending:' .. ARGV[2], '1') == 0 then
  return {'', 2}
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'', 3}
"""


class PartState(enum.IntEnum):
    REPLY_POSTED = 0  # the whole reply is in the posted ledger: `platform_id` is its id
    PART_POSTED = 1  # this part is recorded: `platform_id` is its id
    PENDING = 2  # an earlier try marked it and did not record it: it may be on the platform
    MARKED = 3  # nothing known: marked pending now, post it


@dataclass(frozen=True, slots=True)
class PartClaim:
    state: PartState
    platform_id: str


@dataclass(frozen=True, slots=True)
class AnswerIndex:
    """Which run a posted answer came from (keys.answer), written with the part's record."""

    where: tuple[str, str, str]  # platform, workspace, channel (the message id is the post's)
    run: str
    thread: str


class Parts:
    """Part records under `Namespace(name)` (`{thread}:<name>:parts`, POSTED_TTL_SECONDS like
    the posted ledger): field `<reply key>:<part>` -> platform id, `pending:<field>` -> 1."""

    def __init__(self, redis: RedisClient, name: str) -> None:
        self._redis = redis
        self._ns = keys.Namespace(name)
        self._claim = redis.register_script(CLAIM_PART)
        # No slots on a single Redis: the answer index can share the part's transaction.
        self._one_step = not isinstance(redis, RedisCluster)

    def _key(self, thread: ThreadKey) -> str:
        return self._ns.thread(thread, "parts")

    async def claim(self, thread: ThreadKey, reply_key: str, index: int) -> PartClaim:
        script_keys = [self._key(thread), keys.posted(thread)]
        args: list[str | int] = [reply_key, f"{reply_key}:{index}", keys.POSTED_TTL_SECONDS]
        async with storage("posted reply parts"):
            found, state = await self._claim(keys=script_keys, args=args)
        return PartClaim(PartState(int(state)), text(found))

    async def posted(
        self,
        thread: ThreadKey,
        reply_key: str,
        index: int,
        platform_id: str,
        *,
        last: bool,
        answer: AnswerIndex | None = None,
    ) -> None:
        """Record the posted part; the last one records the reply in the posted ledger too."""
        field, parts = f"{reply_key}:{index}", self._key(thread)
        async with storage("record posted reply part"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(parts, field, platform_id)
                pipe.hdel(parts, f"pending:{field}")
                pipe.expire(parts, keys.POSTED_TTL_SECONDS)
                if last:
                    pipe.hset(keys.posted(thread), reply_key, platform_id)
                    pipe.expire(keys.posted(thread), keys.POSTED_TTL_SECONDS)
                if answer is not None and self._one_step:
                    _index(pipe, answer, platform_id)
                await pipe.execute()
            if answer is not None and not self._one_step:
                async with self._redis.pipeline(transaction=True) as pipe:
                    _index(pipe, answer, platform_id)
                    await pipe.execute()


def _index(pipe: Pipeline | ClusterPipeline, answer: AnswerIndex, platform_id: str) -> None:
    key = keys.answer(*answer.where, platform_id)
    pipe.hset(key, mapping={"run": answer.run, "thread": answer.thread})
    pipe.expire(key, keys.ANSWER_TTL_SECONDS)
