"""Edit or withdraw a message still waiting in its thread's inbox (for bridge.edits)."""

from __future__ import annotations

from bridge.codec import text
from bridge.models import ThreadKey
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage

# KEYS: inbox, turn. ARGV: message id, new payload ('' withdraws the message).
# -> 'pending' changed or withdrawn, 'taken' a turn may have read it, 'unknown' not waiting.
# One step: the worker's commit trims the inbox by position, so nothing inside the batch a turn
# works on may move. That batch is the journal's ids (the inbox's head). A turn reads the inbox
# only in BEGIN, which writes the journal in the same script (bridge/store/scripts.py), so an
# entry outside the journal has not been read for any turn, even while the lease is held: between
# a commit that kept the lease and the holder's next BEGIN there is a lease and no journal, and
# the next BEGIN reads what is here then.
REVISE_PENDING = """
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
local index = nil
for i, raw in ipairs(entries) do
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and decoded['message_id'] == ARGV[1] then
    index = i
    break
  end
end
if index == nil then
  return 'unknown'
end
local journal = redis.call('HGET', KEYS[2], 'ids')
if journal then
  local ids = cjson.decode(journal)
  if index <= #ids then
    return 'taken'
  end
  for _, id in ipairs(ids) do
    if id == ARGV[1] then
      return 'taken'
    end
  end
end
if ARGV[2] == '' then
  redis.call('LREM', KEYS[1], 1, entries[index])
else
  redis.call('LSET', KEYS[1], index - 1, ARGV[2])
end
return 'pending'
"""


class PendingRevisions:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._script = redis.register_script(REVISE_PENDING)

    async def revise(self, thread: ThreadKey, message_id: str, payload: str) -> str:
        """'pending' (changed, or withdrawn when `payload` is ''), 'taken' or 'unknown'."""
        script_keys = [keys.inbox(thread), keys.turn(thread)]
        async with storage("revise"):
            return text(await self._script(keys=script_keys, args=[message_id, payload]))

    async def was_seen(self, thread: ThreadKey, message_id: str) -> bool:
        """The message's dedupe claim exists: the bridge accepted it once."""
        async with storage("revise"):
            return bool(await self._redis.exists(keys.seen(thread, message_id)))
