"""The Lua of a turn's phases (begin, heartbeat, hand back, commit), each with its KEYS/ARGV.

Each script touches one thread's keys, fenced by the lease token. On a single Redis the worker's
scheduling entry (`bridge:ready`, another Cluster slot) is passed too, so the step that ends a
hold also acknowledges its entry and a heartbeat also keeps the entry from looking idle: one round
trip each. On a Cluster the stream is left out and the store writes it in a second command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient

# Shared by the scripts below: acknowledge and delete the scheduling entry when it was passed
# (KEYS[#KEYS] is the stream, the last two ARGV are the group and the entry id).
_DONE = """
local function done()
  if KEYS[STREAM] then
    redis.call('XACK', KEYS[STREAM], ARGV[#ARGV - 1], ARGV[#ARGV])
    redis.call('XDEL', KEYS[STREAM], ARGV[#ARGV])
  end
end
"""

# KEYS: lease, inbox, record, turn, attempts, create claim, facts[, ready stream]. ARGV: token,
# lease ms, acquire (1/0), turn ttl, claim ttl[, group, entry id].
# -> nil: another worker holds the lease (it looks at the inbox again before it lets go); -1:
# lease lost; 0: inbox empty, lease released; (nil and 0 acknowledge the entry) else {pending
# messages, record fields, journal ids found, turns started on the head batch, create claim: 0
# the thread has a conversation, 1 taken now, 2 already there (a create may have half-happened),
# the thread's facts for its conversation's data (read only when there is no conversation)}.
# One round trip opens a turn: the lease, what to do, what the thread is, what went before. A
# turn with no journal gets one now (the ids of every pending message, of which the turn takes a
# prefix): from here on the agent may see the batch, so a retry must reconcile first. A thread
# without a conversation gets its create claim now, for the same reason: the turn may create one.
# Shared by BEGIN and ACCEPT_START (bridge/store/start.py): read the next turn of a thread whose
# lease is held (-> nil when the inbox is empty). Counts the turn on the head batch, gives a turn
# with no journal one now (the ids of every pending message, of which the turn takes a prefix):
# from here on the agent may see the batch, so a retry must reconcile first. A thread without a
# conversation gets its create claim now, for the same reason: the turn may create one.
OPEN = """
local function open(inbox, record, turn, attempts, claim_key, facts, token, turn_ttl, claim_ttl)
  local items = redis.call('LRANGE', inbox, 0, -1)
  if #items == 0 then
    return nil
  end
  local head = cjson.decode(items[1])['message_id']
  if redis.call('HGET', attempts, 'head') ~= head then
    redis.call('HSET', attempts, 'head', head, 'count', 0)
  end
  local count = redis.call('HINCRBY', attempts, 'count', 1)
  redis.call('EXPIRE', attempts, turn_ttl)
  local journal = redis.call('HGET', turn, 'ids') or ''
  if journal == '' then
    local ids = {}
    for i, item in ipairs(items) do
      ids[i] = cjson.decode(item)['message_id']
    end
    redis.call('HSET', turn, 'ids', cjson.encode(ids))
    redis.call('EXPIRE', turn, turn_ttl)
  end
  local claim, found = 0, {}
  local conversation = redis.call('HGET', record, 'conversation_id')
  if not conversation or conversation == '' then
    claim = 2
    if redis.call('SET', claim_key, token, 'NX', 'EX', claim_ttl) then
      claim = 1
    end
    found = redis.call('HGETALL', facts)
  end
  return {items, redis.call('HGETALL', record), journal, count, claim, found}
end
"""

# KEYS: lease, inbox, record, turn, attempts, create claim, facts[, ready stream]. ARGV: token,
# lease ms, acquire (1/0), turn ttl, claim ttl[, group, entry id].
# -> nil: another worker holds the lease (it looks at the inbox again before it lets go); -1:
# lease lost; 0: inbox empty, lease released; (nil and 0 acknowledge the entry) else {pending
# messages, record fields, journal ids found, turns started on the head batch, create claim: 0
# the thread has a conversation, 1 taken now, 2 already there (a create may have half-happened),
# the thread's facts for its conversation's data (read only when there is no conversation)}.
# One round trip opens a turn: the lease, what to do, what the thread is, what went before.
BEGIN = (
    "local STREAM = 8\n"
    + _DONE
    + OPEN
    + """
if ARGV[3] == '1' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    done()
    return false
  end
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local opened = open(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[1], ARGV[4], ARGV[5])
if not opened then
  redis.call('DEL', KEYS[1])
  done()
  return 0
end
return opened
"""
)

# KEYS: lease[, ready stream]. ARGV: token, lease ms[, group, consumer, entry id].
# -> 1 extended, 0 lost. The entry is touched (its idle time reset) either way, as the holder
# learns of a lost lease only from this reply.
HEARTBEAT = """
if KEYS[2] then
  redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[4], 0, ARGV[5], 'JUSTID')
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease[, ready stream]. ARGV: token[, thread key, group, entry id]. -> 1 released (and
# the thread scheduled again, its entry acknowledged), 0 not ours (nothing changed). Hands a thread
# with work still pending back to the queue; the new entry comes after the release, never before:
# a worker that took it while the lease was still held would drop it.
HAND_BACK = (
    "local STREAM = 2\n"
    + _DONE
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if KEYS[2] then
  redis.call('XADD', KEYS[2], '*', 'thread', ARGV[2])
end
done()
return 1
"""
)

# KEYS: lease, inbox, record, turn, attempts, create claim[, ready stream]. ARGV: token, count,
# last message id, history mark, now, record ttl, drop the claim (1/0)[, group, entry id].
# -> 2 committed and the lease released (nothing pending; the entry acknowledged), 1 committed
# with more pending (lease kept), 0 lease lost (nothing changed: the new holder redoes the batch).
# Releasing here, in the same step as the emptiness check, means a message pushed after the
# holder's last look can never be left behind with no lease holder to see it.
COMMIT = (
    "local STREAM = 7\n"
    + _DONE
    + """
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
if ARGV[7] == '1' then
  redis.call('DEL', KEYS[6])
end
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
  done()
  return 2
end
return 1
"""
)


@dataclass(slots=True)
class Hold:
    """One worker's hold on a thread for one scheduling entry: the lease token fences every write;
    `acked` says that a script already acknowledged the entry (single Redis only), `released`
    that a phase let the lease go, `letting_go` that a phase that may let it go (a begin that
    keeps the lease, a hand-back, a commit) is in flight: a heartbeat crossing either finds the
    lease gone, and the phase's reply tells the holder. `attempt`: the turns BEGIN counted on
    the head batch (this one included)."""

    thread: ThreadKey
    token: str
    entry_id: str = ""
    acked: bool = False
    released: bool = False
    letting_go: bool = False
    attempt: int = 0


def _turn_keys(thread: ThreadKey) -> list[str]:
    return [
        keys.lease(thread),
        keys.inbox(thread),
        keys.record(thread),
        keys.turn(thread),
        keys.attempts(thread),
        keys.create_claim(thread),
    ]


class PhaseScripts:
    """The scripts above on one client; `with_stream` on a single Redis (see the docstring)."""

    def __init__(self, redis: RedisClient, *, with_stream: bool) -> None:
        self.with_stream = with_stream
        self._begin = redis.register_script(BEGIN)
        self._heartbeat = redis.register_script(HEARTBEAT)
        self._hand_back = redis.register_script(HAND_BACK)
        self._commit = redis.register_script(COMMIT)

    def _entry(self, hold: Hold, script_keys: list[str], args: list[str | int]) -> bool:
        """Add the stream and entry when this hold's entry can be acknowledged by the script."""
        if not (self.with_stream and hold.entry_id):
            return False
        script_keys.append(keys.READY_STREAM)
        args.extend([keys.WORKER_GROUP, hold.entry_id])
        return True

    async def begin(self, hold: Hold, ms: int, *, acquire: bool) -> Any:
        script_keys = [*_turn_keys(hold.thread), keys.facts(hold.thread)]
        args: list[str | int] = [
            hold.token,
            ms,
            1 if acquire else 0,
            keys.TURN_TTL_SECONDS,
            keys.CREATE_CLAIM_TTL_SECONDS,
        ]
        acks = self._entry(hold, script_keys, args)
        hold.letting_go = not acquire
        try:
            reply = await self._begin(keys=script_keys, args=args)
        finally:
            hold.letting_go = False
        if reply == 0:
            hold.released = True
        hold.acked = hold.acked or (acks and (reply is None or reply == 0))
        return reply

    async def heartbeat(self, hold: Hold, ms: int, consumer: str) -> bool:
        script_keys = [keys.lease(hold.thread)]
        args: list[str | int] = [hold.token, ms]
        if self.with_stream and hold.entry_id:
            script_keys.append(keys.READY_STREAM)
            args.extend([keys.WORKER_GROUP, consumer, hold.entry_id])
        return bool(await self._heartbeat(keys=script_keys, args=args))

    async def hand_back(self, hold: Hold) -> bool:
        script_keys = [keys.lease(hold.thread)]
        args: list[str | int] = [hold.token, str(hold.thread)]
        acks = self._entry(hold, script_keys, args)
        hold.letting_go = True
        try:
            released = bool(await self._hand_back(keys=script_keys, args=args))
        finally:
            hold.letting_go = False
        hold.released = hold.released or released
        hold.acked = hold.acked or (acks and released)
        return released

    async def commit(
        self,
        hold: Hold,
        count: int,
        last_message_id: str,
        mark: str,
        now: str,
        record_ttl: int,
        *,
        unclaim: bool,
    ) -> int:
        script_keys = _turn_keys(hold.thread)
        args: list[str | int] = [
            hold.token,
            count,
            last_message_id,
            mark,
            now,
            record_ttl,
            1 if unclaim else 0,
        ]
        acks = self._entry(hold, script_keys, args)
        hold.letting_go = True
        try:
            done = int(await self._commit(keys=script_keys, args=args))
        finally:
            hold.letting_go = False
        hold.released = hold.released or done == 2
        hold.acked = hold.acked or (acks and done == 2)
        return done
