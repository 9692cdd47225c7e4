"""The Lua scripts that make the pipeline's multi-step Redis writes atomic (one slot each)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

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

# KEYS: lease. ARGV: token, ms. -> 1 extended, 0 lost.
EXTEND_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease, inbox. ARGV: token. -> 1 released, 0 work arrived (keep going), -1 lease lost.
# The emptiness check and the release are one step, so a message pushed after the holder's last
# look can never be left behind with no lease holder to see it.
RELEASE_IF_EMPTY = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('LLEN', KEYS[2]) > 0 then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
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
# now, record ttl. -> 1 committed, 0 lease lost (nothing changed: the new holder redoes the batch).
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
    """The scripts registered on one client (EVALSHA, reloaded by redis-py after a restart)."""

    def __init__(self, redis: Redis | RedisCluster) -> None:
        self.enqueue: AsyncScript = redis.register_script(ENQUEUE)
        self.extend_lease: AsyncScript = redis.register_script(EXTEND_LEASE)
        self.release_if_empty: AsyncScript = redis.register_script(RELEASE_IF_EMPTY)
        self.commit: AsyncScript = redis.register_script(COMMIT)
        self.count_attempt: AsyncScript = redis.register_script(COUNT_ATTEMPT)
