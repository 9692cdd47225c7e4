"""Part records of replies posted in parts, next to the posted ledger, on single Redis and
Cluster: one step to check a part (and the whole reply), one to record it."""

from __future__ import annotations

from bridge.models import ThreadKey
from bridge.store import Store, keys
from bridge.store.client import RedisClient
from bridge.store.parts import AnswerIndex, Parts, PartState

THREAD = ThreadKey("slack", "T1", "C1", "1712345.0001")


async def test_a_part_is_marked_before_and_recorded_after_its_post(any_redis: RedisClient) -> None:
    parts = Parts(any_redis, "slack")
    claim = await parts.claim(THREAD, "msg-1", 0)
    assert (claim.state, claim.platform_id) == (PartState.MARKED, "")
    # A second look finds the mark an unfinished try left: the part may be on the platform.
    assert (await parts.claim(THREAD, "msg-1", 0)).state is PartState.PENDING
    await parts.posted(THREAD, "msg-1", 0, "ts-0", last=False)
    again = await parts.claim(THREAD, "msg-1", 0)
    assert (again.state, again.platform_id) == (PartState.PART_POSTED, "ts-0")
    parts_key = keys.Namespace("slack").thread(THREAD, "parts")
    assert await any_redis.hgetall(parts_key) == {b"msg-1:0": b"ts-0"}  # the mark went
    assert 0 < await any_redis.ttl(parts_key) <= keys.POSTED_TTL_SECONDS
    assert await Store(any_redis, record_ttl_seconds=60).posted.get(THREAD, "msg-1") is None


async def test_the_last_part_records_the_whole_reply_and_its_answer_index(
    any_redis: RedisClient,
) -> None:
    parts = Parts(any_redis, "slack")
    store = Store(any_redis, record_ttl_seconds=60)
    answer = AnswerIndex(("slack", "T1", "C1"), "run-1", THREAD.thread)
    for index in (0, 1):
        assert (await parts.claim(THREAD, "msg-2", index)).state is PartState.MARKED
        await parts.posted(THREAD, "msg-2", index, f"ts-{index}", last=index == 1, answer=answer)
    assert await store.posted.get(THREAD, "msg-2") == "ts-1"
    for index in (0, 1):
        claim = await parts.claim(THREAD, "msg-2", index)
        assert (claim.state, claim.platform_id) == (PartState.REPLY_POSTED, "ts-1")
    for ts in ("ts-0", "ts-1"):
        run = await any_redis.hgetall(keys.answer("slack", "T1", "C1", ts))
        assert run == {b"run": b"run-1", b"thread": THREAD.thread.encode()}
        assert await any_redis.ttl(keys.answer("slack", "T1", "C1", ts)) > 0
    assert 0 < await any_redis.ttl(keys.posted(THREAD)) <= keys.POSTED_TTL_SECONDS


async def test_a_reply_the_core_recorded_is_never_claimed_again(any_redis: RedisClient) -> None:
    store = Store(any_redis, record_ttl_seconds=60)
    await store.posted.record(THREAD, "notice-1", "ts-9")
    claim = await Parts(any_redis, "slack").claim(THREAD, "notice-1", 0)
    assert (claim.state, claim.platform_id) == (PartState.REPLY_POSTED, "ts-9")
    assert not await any_redis.exists(keys.Namespace("slack").thread(THREAD, "parts"))
