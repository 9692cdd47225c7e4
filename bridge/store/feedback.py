"""Feedback state: which run produced each posted answer, once-only deliveries, last votes."""

from __future__ import annotations

from bridge.codec import text
from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage


class FeedbackStore:
    """Key names and TTLs: keys.answer / feedback_claim / feedback_votes. Every method raises
    StorageUnavailable when Redis fails."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def remember_answer(
        self, where: tuple[str, str, str, str], run: str, thread: str
    ) -> None:
        """`where` = (platform, workspace, channel, message id) of the posted answer."""
        key = keys.answer(*where)
        operation = storage("remember the answer's run")
        async with operation, self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"run": run, "thread": thread})
            pipe.expire(key, keys.ANSWER_TTL_SECONDS)
            await pipe.execute()

    async def answer(self, where: tuple[str, str, str, str]) -> tuple[str, str] | None:
        """(run, thread) behind a posted message, or None when it is not a remembered answer."""
        async with storage("read the answer's run"):
            run, thread = await self._redis.hmget(keys.answer(*where), ["run", "thread"])
        return None if run is None else (text(run), text(thread))

    async def claim_delivery(self, platform: str, delivery_id: str) -> bool:
        """True for the first claim of this delivery (FEEDBACK_CLAIM_TTL_SECONDS)."""
        claim = keys.feedback_claim(platform, delivery_id)
        async with storage("claim the feedback delivery"):
            ttl = keys.FEEDBACK_CLAIM_TTL_SECONDS
            return bool(await self._redis.set(claim, "1", nx=True, ex=ttl))

    async def release_delivery(self, platform: str, delivery_id: str) -> None:
        async with storage("release the feedback claim"):
            await self._redis.delete(keys.feedback_claim(platform, delivery_id))

    async def last_vote(self, run_id: str, voter: str) -> str | None:
        async with storage("read the last vote"):
            last = await self._redis.hget(keys.feedback_votes(run_id), voter)
        return None if last is None else text(last)

    async def note_vote(self, run_id: str, voter: str, thumbs: str) -> None:
        key = keys.feedback_votes(run_id)
        async with storage("note the vote"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, voter, thumbs)
            pipe.expire(key, keys.ANSWER_TTL_SECONDS)
            await pipe.execute()
