"""The Lua scripts that make multi-step writes atomic, each with its KEYS/ARGV built right below.

Every script touches one thread's keys only (one hash tag, one Cluster slot), plus the
`bridge:ready` stream on a single Redis where there are no slots. Callers pass typed values; only
this module (and `phases.py` for a turn's lease phases) knows the order of KEYS and ARGV.
"""

from __future__ import annotations

from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient

# Shared by ACCEPT and ACCEPT_START (bridge/store/start.py): read the thread's standing and, if
# it is taken in it ('1' at its place in `taken`), dedupe-claim and push the message. -> standing,
# 1 stored | 0 duplicate | -1 not taken (nothing written).
TAKE = """
local function take(record, inbox, seen, taken, payload, seen_ttl, inbox_ttl)
  local status = redis.call('HGET', record, 'status')
  local standing = 1
  if status == 'human' then
    standing = 3
  elseif (status and status ~= '') or redis.call('EXISTS', inbox) == 1 then
    standing = 2
  end
  if string.sub(taken, standing, standing) ~= '1' then
    return standing, -1
  end
  if redis.call('SET', seen, '1', 'NX', 'EX', seen_ttl) then
    redis.call('RPUSH', inbox, payload)
    redis.call('EXPIRE', inbox, inbox_ttl)
    return standing, 1
  end
  return standing, 0
end
"""


def take_keys(thread: ThreadKey, message_id: str) -> list[str]:
    """The KEYS that open ACCEPT's and ACCEPT_START's (`take`'s record, inbox, seen)."""
    return [keys.record(thread), keys.inbox(thread), keys.seen(thread, message_id)]


def take_args(thread: ThreadKey, payload: str, taken: str) -> list[str | int]:
    """The ARGV that open ACCEPT's and ACCEPT_START's: taken standings, payload, seen ttl,
    inbox ttl, thread key."""
    return [taken, payload, keys.SEEN_TTL_SECONDS, keys.INBOX_TTL_SECONDS, str(thread)]


# KEYS: record, inbox, seen[, ready stream]. ARGV: taken standings (one '1'/'0' per
# bridge.models.Standing: unknown, known, human), payload, seen ttl, inbox ttl, thread key.
# -> {standing, 1 stored | 0 duplicate | -1 not taken in this standing (nothing written)}.
# The policy's input (record status, pending messages) is read in the same step as the message is
# claimed and pushed, so no state change can slip between the decision and the push. Claim and
# push together: a claim without its message would drop the platform's redelivery. A duplicate is
# scheduled too: had a crash come between the push and the schedule, the platform's redelivery is
# what puts the stranded message back in front of a worker. The stream key is passed on a single
# Redis only (on a Cluster it lives in another slot and is written next, after the push).
ACCEPT = (
    TAKE
    + """
local standing, stored = take(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if stored < 0 then
  return {standing, -1}
end
if #KEYS == 4 then
  redis.call('XADD', KEYS[4], '*', 'thread', ARGV[5])
end
return {standing, stored}
"""
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
    """The scripts registered on one client (EVALSHA; redis-py reloads them after a restart).
    `with_stream`: a single Redis, where a script may also write the `bridge:ready` stream."""

    def __init__(self, redis: RedisClient, *, with_stream: bool) -> None:
        self.with_stream = with_stream
        self._accept = redis.register_script(ACCEPT)
        self._enqueue_many = redis.register_script(ENQUEUE_MANY)
        self._swap = redis.register_script(SWAP_CONVERSATION)

    async def accept(
        self, thread: ThreadKey, message_id: str, payload: str, taken: str
    ) -> tuple[int, int]:
        """`taken`: '1' or '0' per Standing (in order): whether to take the message.
        -> (the thread's standing, 1 stored | 0 duplicate | -1 not taken)."""
        script_keys = take_keys(thread, message_id)
        if self.with_stream:
            script_keys.append(keys.READY_STREAM)
        args = take_args(thread, payload, taken)
        state, stored = await self._accept(keys=script_keys, args=args)
        return int(state), int(stored)

    async def enqueue_many(self, thread: ThreadKey, messages: list[tuple[str, str]]) -> int:
        """`messages` as (message id, payload), oldest first."""
        script_keys = [keys.inbox(thread), *(keys.seen(thread, mid) for mid, _ in messages)]
        args: list[str | int] = [keys.SEEN_TTL_SECONDS, keys.INBOX_TTL_SECONDS]
        args.extend(payload for _, payload in messages)
        return int(await self._enqueue_many(keys=script_keys, args=args))

    async def swap_conversation(
        self, thread: ThreadKey | str, expected: str, fields: dict[str, str], record_ttl: int
    ) -> bool:
        args: list[str | int] = [expected, record_ttl]
        args.extend(item for pair in fields.items() for item in pair)
        return bool(await self._swap(keys=[keys.record(thread)], args=args))
