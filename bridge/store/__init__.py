"""The one owner of Redis state: every key, every Lua script, error translation, typed operations.

    Store
    ├── queue          accept (policy state + dedupe + push + schedule), accept_start (the
    │                  same, taking an idle thread's lease and its turn for the caller's
    │                  worker: bridge/store/start.py), read / claim / ack
    ├── threads        a turn's phases on its Hold: begin, heartbeat, hand back, fenced commit
    ├── records        thread -> conversation record hashes, create claims, swap, facts for a
    │                  conversation yet to be created (BEGIN reads them)
    ├── posted         outbound idempotency ledger (parts.Parts: an adapter posting in parts keeps
    │                  it with its per-part records, in the same round trips)
    ├── dead_letters   turns given up, by turn id
    └── namespace(n)   keys for an adapter's own state (`{thread}:n:...`, `bridge:n:...`)

Redis errors leave it as `StorageUnavailable` (`storage()`); a fenced write by a holder that
lost its lease raises `LeaseLost`. Key names and TTLs: `bridge/store/keys.py`; scripts with their
KEYS/ARGV next to them: `scripts.py` (accept, replay, swap), `phases.py` (a turn's begin,
heartbeat, hand back, commit), `parts.py`, `revise.py`, `appendonce.py`.
"""

from __future__ import annotations

from redis.asyncio.cluster import RedisCluster

from bridge.store import keys
from bridge.store.adopt import adopt_orphans
from bridge.store.client import RedisClient
from bridge.store.errors import LeaseLost, storage
from bridge.store.keys import Namespace
from bridge.store.ledgers import DeadLetterStore, Posted
from bridge.store.phases import Hold, PhaseScripts
from bridge.store.queue import Entry, Queue
from bridge.store.records import Records
from bridge.store.scripts import Scripts
from bridge.store.start import StartScripts
from bridge.store.threads import ThreadState

__all__ = ["Entry", "Hold", "LeaseLost", "Namespace", "RedisClient", "Store", "keys", "storage"]


class Store:
    def __init__(self, redis: RedisClient, *, record_ttl_seconds: int) -> None:
        # No slots on a single Redis: scripts may write the ready stream in the same step.
        with_stream = not isinstance(redis, RedisCluster)
        scripts = Scripts(redis, with_stream=with_stream)
        self.redis = redis
        self.record_ttl_seconds = record_ttl_seconds
        self.queue = Queue(redis, scripts, StartScripts(redis, with_stream=with_stream))
        self.threads = ThreadState(redis, scripts, PhaseScripts(redis, with_stream=with_stream))
        self.records = Records(redis, scripts, idle_ttl_seconds=record_ttl_seconds)
        self.posted = Posted(redis)
        self.dead_letters = DeadLetterStore(redis)

    async def adopt_orphans(self, consumer: str) -> tuple[int, int]:
        """Call only when no other process can be using this Redis (an embedded server this
        process just started): every lease is a dead holder's and every unacknowledged entry
        a dead worker's. Leases go and entries move to `consumer`, whose first backlog read
        runs them, instead of waiting out lease_seconds and claim_idle_seconds. A straggler
        that reconnects later only finds its lease gone: its fenced writes fail (LeaseLost).
        Returns (leases dropped, entries adopted)."""
        return await adopt_orphans(self.redis, self.queue, consumer)

    @staticmethod
    def namespace(name: str) -> Namespace:
        return Namespace(name)
