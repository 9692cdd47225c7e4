"""ACCEPT_START: the accepting process takes the lease with the message and starts its turn.

A message for an idle thread (no lease holder) accepted by a process with a free turn slot needs
no wake-up and no BEGIN: the step that stores it also takes the lease for this process's worker
and reads the turn (BEGIN's body). It stays exactly as recoverable as a turn a worker read: its
scheduling entry is delivered to this process's consumer (XREADGROUP, no block) in the step that
takes the lease on a single Redis, and before the message is pushed on a Cluster (where the stream
lives in another slot and stays out of the thread's script). So the entry is pending from the
moment a holder may exist: a holder that dies leaves its lease to run out and its entry to go
idle, and XAUTOCLAIM hands the thread to another worker, whose BEGIN reads the inbox again.

An entry is taken only while the stream has no undelivered entries: threads already in line go
first (the wake-up only skips the line when there is none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.phases import OPEN
from bridge.store.scripts import TAKE, take_args, take_keys

# Shared: add a scheduling entry for `thread` and deliver it to `consumer` at once, if the group
# exists and every entry was delivered already (nothing in line) -> the entry id, else false.
_TAKE_ENTRY = """
local function take_entry(stream, group, consumer, thread)
  if redis.call('EXISTS', stream) == 0 then
    return false
  end
  local delivered = nil
  for _, fields in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, last = nil, nil
    for i = 1, #fields, 2 do
      if fields[i] == 'name' then
        name = fields[i + 1]
      elseif fields[i] == 'last-delivered-id' then
        last = fields[i + 1]
      end
    end
    if name == group then
      delivered = last
    end
  end
  if not delivered then
    return false
  end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' and info[i + 1] ~= delivered then
      return false
    end
  end
  local id = redis.call('XADD', stream, '*', 'thread', thread)
  redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
  return id
end
"""

# Cluster, first step (the stream's slot only). KEYS: ready stream. ARGV: group, consumer, thread
# key. -> the entry id, now pending to `consumer`, or false (nothing written).
TAKE_ENTRY = _TAKE_ENTRY + "return take_entry(KEYS[1], ARGV[1], ARGV[2], ARGV[3])\n"

# KEYS: record, inbox, seen, lease, turn, attempts, create claim, facts[, ready stream]. ARGV:
# taken standings, payload, seen ttl, inbox ttl, thread key, token, lease ms, turn ttl, claim ttl,
# group, consumer, entry id (Cluster: TAKE_ENTRY's, or ''). ACCEPT, and if the message is new and
# the thread has no lease holder, the lease (token) and the turn. -> {standing, -1} not taken;
# {standing, 1, entry id, BEGIN's reply} the turn started, its entry pending to `consumer`;
# else {standing, stored, entry id}: on a single Redis the thread was scheduled (entry id ''),
# on a Cluster the entry passed in is the thread's schedule ('' if none: schedule it next).
ACCEPT_START = (
    TAKE
    + OPEN
    + _TAKE_ENTRY
    + """
local standing, stored = take(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if stored < 0 then
  return {standing, -1}
end
local entry = ARGV[12]
if stored == 1 and redis.call('EXISTS', KEYS[4]) == 0 then
  if KEYS[9] then
    entry = take_entry(KEYS[9], ARGV[10], ARGV[11], ARGV[5]) or ''
  end
  if entry ~= '' then
    redis.call('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
    local opened = open(KEYS[2], KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[6], ARGV[8],
      ARGV[9])
    return {standing, 1, entry, opened}
  end
end
if KEYS[9] then
  redis.call('XADD', KEYS[9], '*', 'thread', ARGV[5])
end
return {standing, stored, entry}
"""
)


@dataclass(frozen=True, slots=True)
class StartReply:
    """ACCEPT_START's answer: `stored` 1 / 0 duplicate / -1 not taken; `entry_id` an entry
    pending to this consumer ('' none): the started turn's, or (Cluster) the thread's schedule;
    `opened` BEGIN's reply when the turn started."""

    standing: int
    stored: int
    entry_id: str = ""
    opened: Any = None


class StartScripts:
    """The scripts above on one client; `with_stream` on a single Redis."""

    def __init__(self, redis: RedisClient, *, with_stream: bool) -> None:
        self.with_stream = with_stream
        self._take_entry = redis.register_script(TAKE_ENTRY)
        self._accept_start = redis.register_script(ACCEPT_START)

    async def take_entry(self, thread: ThreadKey, consumer: str) -> str:
        """Cluster: an entry for `thread` delivered to `consumer` now; '' if others wait in line."""
        reply = await self._take_entry(
            keys=[keys.READY_STREAM], args=[keys.WORKER_GROUP, consumer, str(thread)]
        )
        return text(reply) if reply else ""

    async def accept_start(
        self,
        thread: ThreadKey,
        message_id: str,
        payload: str,
        taken: str,
        *,
        token: str,
        lease_ms: int,
        consumer: str,
        entry_id: str = "",
    ) -> StartReply:
        script_keys = [
            *take_keys(thread, message_id),
            keys.lease(thread),
            keys.turn(thread),
            keys.attempts(thread),
            keys.create_claim(thread),
            keys.facts(thread),
        ]
        if self.with_stream:
            script_keys.append(keys.READY_STREAM)
        args: list[str | int] = [
            *take_args(thread, payload, taken),
            token,
            lease_ms,
            keys.TURN_TTL_SECONDS,
            keys.CREATE_CLAIM_TTL_SECONDS,
            keys.WORKER_GROUP,
            consumer,
            entry_id,
        ]
        reply = await self._accept_start(keys=script_keys, args=args)
        standing, stored = int(reply[0]), int(reply[1])
        if stored < 0:
            return StartReply(standing, stored)
        opened = reply[3] if len(reply) > 3 else None
        return StartReply(standing, stored, text(reply[2]), opened)
