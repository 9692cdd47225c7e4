"""The Lua scripts that make multi-step writes atomic, each with its KEYS/ARGV built right below.

Every script touches one thread's keys only (one hash tag, one Cluster slot). Callers pass typed
values; only this module knows the order of KEYS and ARGV.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript

from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient

Call = tuple[list[str], list[str | int]]  # (KEYS, ARGV)

# KEYS: seen, inbox. ARGV: payload, seen ttl, inbox ttl. -> 1 stored, 0 duplicate.
# Claim and push in one step: a claim without its message would drop the platform's redelivery.
ENQUEUE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


def enqueue_call(thread: ThreadKey, message_id: str, payload: str) -> Call:
    return (
        [keys.seen(thread, message_id), keys.inbox(thread)],
        [payload, keys.SEEN_TTL_SECONDS, keys.INBOX_TTL_SECONDS],
    )


# KEYS: inbox, seen 1..n. ARGV: seen ttl, inbox ttl, payload 1..n. -> how many were stored.
# Several messages of one thread at once (a replayed dead letter): a worker sees all or none, so
# they are answered together as they were first asked.
ENQUEUE_MANY = """
local stored = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    stored = stored + 1
  end
end
if stored > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return stored
"""


# KEYS: lease. ARGV: token, ms. -> 1 extended, 0 lost.
EXTEND_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: token. -> 1 released, 0 not ours (nothing changed).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lease, inbox, record, turn, attempts. ARGV: token, lease ms, acquire (1/0), ttl.
# -> nil: another worker holds the lease; -1: lease lost; 0: inbox empty, lease released;
# else {pending messages, record fields, journal ids found, turns started on the head batch}.
# One round trip opens a turn: the lease, what to do, what the thread is, what went before. A
# turn with no journal gets one now (the ids of every pending message, of which the turn takes
# a prefix): from here on the agent may see the batch, so a retry must reconcile first.
BEGIN = """
if ARGV[3] == '1' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return false
  end
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
if #items == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
local head = cjson.decode(items[1])['message_id']
if redis.call('HGET', KEYS[5], 'head') ~= head then
  redis.call('HSET', KEYS[5], 'head', head, 'count', 0)
end
local count = redis.call('HINCRBY', KEYS[5], 'count', 1)
redis.call('EXPIRE', KEYS[5], ARGV[4])
local journal = redis.call('HGET', KEYS[4], 'ids') or ''
if journal == '' then
  local ids = {}
  for i, item in ipairs(items) do
    ids[i] = cjson.decode(item)['message_id']
  end
  redis.call('HSET', KEYS[4], 'ids', cjson.encode(ids))
  redis.call('EXPIRE', KEYS[4], ARGV[4])
end
return {items, redis.call('HGETALL', KEYS[3]), journal, count}
"""

# KEYS: attempts. ARGV: head message id, ttl. -> turns started on this head, this one included.
# A different head means the old one was committed (or dropped): its count starts over.
COUNT_ATTEMPT = """
if redis.call('HGET', KEYS[1], 'head') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'head', ARGV[1], 'count', 0)
end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return count
"""

# KEYS: lease, inbox, record, turn, attempts. ARGV: token, count, last message id, history mark,
# now, record ttl. -> 2 committed and the lease released (nothing pending), 1 committed with more
# pending (lease kept), 0 lease lost (nothing changed: the new holder redoes the batch). Releasing
# here, in the same step as the emptiness check, means a message pushed after the holder's last
# look can never be left behind with no lease holder to see it.
COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'last_message_id', ARGV[3], 'updated', ARGV[5])
  if ARGV[4] ~= '' then
    redis.call('HSET', KEYS[3], 'history_mark', ARGV[4])
  end
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
redis.call('DEL', KEYS[4], KEYS[5])
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
  return 2
end
return 1
"""

# KEYS: record. ARGV: expected conversation id, record ttl, field, value, ... -> 1 written, 0 the
# record names another conversation now (someone replaced it first: keep theirs).
SWAP_CONVERSATION = """
if redis.call('HGET', KEYS[1], 'conversation_id') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class Scripts:
    """The scripts registered on one client (EVALSHA; redis-py reloads them after a restart)."""

    def __init__(self, redis: RedisClient) -> None:
        self.enqueue: AsyncScript = redis.register_script(ENQUEUE)
        self._enqueue_many = redis.register_script(ENQUEUE_MANY)
        self._extend_lease = redis.register_script(EXTEND_LEASE)
        self._release = redis.register_script(RELEASE)
        self._count_attempt = redis.register_script(COUNT_ATTEMPT)
        self._commit = redis.register_script(COMMIT)
        self._begin = redis.register_script(BEGIN)
        self._swap = redis.register_script(SWAP_CONVERSATION)

    async def enqueue_many(self, thread: ThreadKey, messages: list[tuple[str, str]]) -> int:
        """`messages` as (message id, payload), oldest first."""
        script_keys = [keys.inbox(thread), *(keys.seen(thread, mid) for mid, _ in messages)]
        args: list[str | int] = [keys.SEEN_TTL_SECONDS, keys.INBOX_TTL_SECONDS]
        args.extend(payload for _, payload in messages)
        return int(await self._enqueue_many(keys=script_keys, args=args))

    async def extend_lease(self, thread: ThreadKey, token: str, ms: int) -> bool:
        return bool(await self._extend_lease(keys=[keys.lease(thread)], args=[token, ms]))

    async def release(self, thread: ThreadKey, token: str) -> bool:
        return bool(await self._release(keys=[keys.lease(thread)], args=[token]))

    async def count_attempt(self, thread: ThreadKey, head_id: str) -> int:
        return int(
            await self._count_attempt(
                keys=[keys.attempts(thread)], args=[head_id, keys.TURN_TTL_SECONDS]
            )
        )

    async def commit(
        self,
        thread: ThreadKey,
        token: str,
        count: int,
        last_message_id: str,
        mark: str,
        now: str,
        record_ttl: int,
    ) -> int:
        script_keys = [
            keys.lease(thread),
            keys.inbox(thread),
            keys.record(thread),
            keys.turn(thread),
            keys.attempts(thread),
        ]
        args: list[str | int] = [token, count, last_message_id, mark, now, record_ttl]
        return int(await self._commit(keys=script_keys, args=args))

    async def begin(self, thread: ThreadKey, token: str, ms: int, *, acquire: bool) -> Any:
        script_keys = [
            keys.lease(thread),
            keys.inbox(thread),
            keys.record(thread),
            keys.turn(thread),
            keys.attempts(thread),
        ]
        args: list[str | int] = [token, ms, 1 if acquire else 0, keys.TURN_TTL_SECONDS]
        return await self._begin(keys=script_keys, args=args)

    async def swap_conversation(
        self, thread: ThreadKey | str, expected: str, fields: dict[str, str], record_ttl: int
    ) -> bool:
        args: list[str | int] = [expected, record_ttl]
        args.extend(item for pair in fields.items() for item in pair)
        return bool(await self._swap(keys=[keys.record(thread)], args=args))
