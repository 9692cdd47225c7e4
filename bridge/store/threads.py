"""Per-thread state a turn works with: lease, pending messages, journal, attempts, commit."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from bridge.codec import text
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import LeaseLost, storage
from bridge.store.phases import Hold, PhaseScripts
from bridge.store.scripts import Scripts

__all__ = ["Begun", "Claim", "CreateClaim", "Hold", "ThreadState", "begun_from"]


class Claim(enum.IntEnum):
    """What `begin` did with the thread's create claim (keys.create_claim)."""

    NONE = 0  # the thread has a conversation: no claim
    TAKEN = 1  # taken by this begin: no create is in flight, the turn may create at once
    FOUND = 2  # already there: an earlier create may have half-happened, search before creating


@dataclass(slots=True)
class CreateClaim:
    """One turn's view of its thread's create claim, as `begin` left it."""

    state: Claim = Claim.NONE
    facts: dict[str, str] = field(default_factory=dict)  # keys.facts: for the conversation's data
    tried: bool = False  # this turn asked Engage Smarter to create a conversation

    @property
    def search_first(self) -> bool:
        """An earlier create (another attempt's, or this turn's own that failed) may have made
        the conversation: look for it before creating another."""
        return self.state == Claim.FOUND or self.tried

    @property
    def release_at_commit(self) -> bool:
        """Taken by `begin` and no create tried: nothing for a later turn to look for."""
        return self.state == Claim.TAKEN and not self.tried


@dataclass(frozen=True, slots=True)
class Begun:
    """What a lease holder needs to run the thread's next turn, read in the same step."""

    pending: list[bytes | str]
    record: dict[str, str]
    journal: list[str]
    attempt: int
    claim: Claim = Claim.NONE
    facts: dict[str, str] = field(default_factory=dict)


def _pairs(flat: Any) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def begun_from(reply: Any) -> Begun:
    """BEGIN's (or ACCEPT_START's) reply for a turn it opened."""
    items, record, journal, attempt, claim, facts = reply
    ids = list(json.loads(journal)) if journal else []
    return Begun(list(items), _pairs(record), ids, int(attempt), Claim(int(claim)), _pairs(facts))


class ThreadState:
    """Fenced by the lease token: a holder that lost its lease changes nothing."""

    def __init__(self, redis: RedisClient, scripts: Scripts, phases: PhaseScripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self._phases = phases

    async def begin(self, hold: Hold, ms: int, *, acquire: bool) -> Begun | None:
        """Take (`acquire`) or keep the lease and read the next turn; None when there is no
        turn for us: another worker holds the thread (it looks again before it lets go), or
        nothing is pending and the lease was released. LeaseLost if a kept lease is gone."""
        async with storage("begin turn"):
            reply = await self._phases.begin(hold, ms, acquire=acquire)
        if reply is None or reply == 0:
            return None
        if reply == -1:
            raise LeaseLost(str(hold.thread))
        begun = begun_from(reply)
        hold.attempt = begun.attempt
        return begun

    async def heartbeat(self, hold: Hold, ms: int, consumer: str) -> bool:
        """Extend the lease and keep the hold's entry from looking idle (one round trip on a
        single Redis); False if the lease is gone."""
        async with storage("heartbeat"):
            alive = await self._phases.heartbeat(hold, ms, consumer)
            if not self._phases.with_stream and hold.entry_id:
                await self._touch(consumer, hold.entry_id)
        return alive

    async def _touch(self, consumer: str, entry_id: str) -> None:
        await self._redis.xclaim(
            keys.READY_STREAM,
            keys.WORKER_GROUP,
            consumer,
            min_idle_time=0,
            message_ids=[entry_id],
            justid=True,
        )

    async def hand_back(self, hold: Hold) -> None:
        """Let go with work still pending and schedule the thread again behind the others
        (after the release, never before: a worker that took the new entry while the lease was
        still held would drop it). LeaseLost if the lease is not ours."""
        async with storage("release"):
            if not await self._phases.hand_back(hold):
                raise LeaseLost(str(hold.thread))
            if not self._phases.with_stream:
                await self._redis.xadd(keys.READY_STREAM, {"thread": str(hold.thread)})

    async def commit(
        self,
        hold: Hold,
        *,
        count: int,
        last_message_id: str,
        mark: str,
        now: str,
        record_ttl: int,
        unclaim: bool = False,
    ) -> bool:
        """Drop the batch from the inbox and note it in the record; LeaseLost if not ours.
        True if more is pending (the lease is kept); False once released (nothing pending).
        `unclaim` drops the create claim `begin` took for a turn that did not try a create."""
        async with storage("commit"):
            done = await self._phases.commit(
                hold, count, last_message_id, mark, now, record_ttl, unclaim=unclaim
            )
        if not done:
            raise LeaseLost(str(hold.thread))
        return done == 1
