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


# KEYS: parts, posted[, answer index]. ARGV: part field, platform id, ttl, 1 if the last part
# (the reply is recorded too) else 0, reply key, answer run, answer thread, answer ttl.
# One script rather than a MULTI of 7-9 commands: as atomic, one reply to read (redis-py: ~120
# instead of ~250 us of CPU per answer). On a Cluster the answer index (another slot) is apart.
RECORD_PART = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], 'pending:' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if KEYS[3] then
  redis.call('HSET', KEYS[3], 'run', ARGV[6], 'thread', ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
return 1
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
        self._record = redis.register_script(RECORD_PART)
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
        field = f"{reply_key}:{index}"
        script_keys = [self._key(thread), keys.posted(thread)]
        ttl = keys.POSTED_TTL_SECONDS
        args: list[str | int] = [field, platform_id, ttl, int(last), reply_key]
        if answer is not None and self._one_step:
            script_keys.append(keys.answer(*answer.where, platform_id))
            args += [answer.run, answer.thread, keys.ANSWER_TTL_SECONDS]
        async with storage("record posted reply part"):
            await self._record(keys=script_keys, args=args)
            if answer is not None and not self._one_step:
                async with self._redis.pipeline(transaction=True) as pipe:
                    _index(pipe, answer, platform_id)
                    await pipe.execute()


def _index(pipe: Pipeline | ClusterPipeline, answer: AnswerIndex, platform_id: str) -> None:
    key = keys.answer(*answer.where, platform_id)
    pipe.hset(key, mapping={"run": answer.run, "thread": answer.thread})
    pipe.expire(key, keys.ANSWER_TTL_SECONDS)
