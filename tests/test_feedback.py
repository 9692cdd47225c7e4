"""FeedbackRecorder against the emulator and a real Redis: upserts, dedupe, withdrawal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.engage.client import EngageClient
from bridge.engage.errors import EngageError
from bridge.engage.models import FeedbackRead, FeedbackUpsert, UserMessage
from bridge.feedback import AnsweredRun, AnswerRef, Answers, FeedbackRecorder, Thumbs, Vote

pytestmark = pytest.mark.timeout(30)


class CountingApi:
    """The real client, counting the upserts that reach the emulator."""

    def __init__(self, engage: EngageClient) -> None:
        self.engage = engage
        self.upserts = 0
        self.fail_next = False

    async def upsert_run_feedback(self, run_id: str, feedback: FeedbackUpsert) -> FeedbackRead:
        self.upserts += 1
        if self.fail_next:
            self.fail_next = False
            return await self.engage.upsert_run_feedback("no-such-run", feedback)
        return await self.engage.upsert_run_feedback(run_id, feedback)


@pytest.fixture
async def engage(emulator: Any) -> AsyncIterator[EngageClient]:
    async with EngageClient(
        base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id, timeout=10.0
    ) as client:
        yield client


async def a_run(engage: EngageClient) -> str:
    conversation = await engage.create_conversation(data={}, source="test")
    [answer] = await engage.chat(conversation.id, [UserMessage(content="hi")], agent="parrot")
    return answer.run_id


async def test_a_changed_mind_leaves_one_record_with_the_last_thumbs(
    engage: EngageClient, redis_client: Any
) -> None:
    run_id = await a_run(engage)
    recorder = FeedbackRecorder(engage, redis_client)
    assert await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.UP))
    assert await recorder.record(Vote(run_id, "slack", "U1", "a2", Thumbs.DOWN))
    [stored] = await engage.get_run_feedback(run_id)
    assert stored.thumbs == "down"
    assert stored.description == "by slack:U1"


async def test_a_redelivered_vote_is_written_once(engage: EngageClient, redis_client: Any) -> None:
    run_id = await a_run(engage)
    api = CountingApi(engage)
    recorder = FeedbackRecorder(api, redis_client)
    assert await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.UP))
    assert not await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.UP))
    assert api.upserts == 1


async def test_a_failed_write_can_be_retried(engage: EngageClient, redis_client: Any) -> None:
    run_id = await a_run(engage)
    api = CountingApi(engage)
    api.fail_next = True
    recorder = FeedbackRecorder(api, redis_client)
    with pytest.raises(EngageError):
        await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.UP))
    assert await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.UP))
    assert [f.thumbs for f in await engage.get_run_feedback(run_id)] == ["up"]


async def test_a_comment_alone_keeps_the_thumbs(engage: EngageClient, redis_client: Any) -> None:
    run_id = await a_run(engage)
    recorder = FeedbackRecorder(engage, redis_client)
    await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.DOWN))
    await recorder.record(Vote(run_id, "slack", "U1", "a2", comment="wrong year"))
    [stored] = await engage.get_run_feedback(run_id)
    assert (stored.thumbs, stored.comment) == ("down", "wrong year")


async def test_withdrawing_clears_only_the_voters_own_current_thumbs(
    engage: EngageClient, redis_client: Any
) -> None:
    run_id = await a_run(engage)
    recorder = FeedbackRecorder(engage, redis_client)
    await recorder.record(Vote(run_id, "slack", "U1", "a1", Thumbs.UP))
    await recorder.record(Vote(run_id, "slack", "U1", "a2", Thumbs.DOWN))
    assert not await recorder.withdraw(Vote(run_id, "slack", "U1", "r1", Thumbs.UP))
    assert [f.thumbs for f in await engage.get_run_feedback(run_id)] == ["down"]
    assert await recorder.withdraw(Vote(run_id, "slack", "U1", "r2", Thumbs.DOWN))
    assert [f.thumbs for f in await engage.get_run_feedback(run_id)] == [""]


async def test_answers_are_remembered_by_where_they_were_posted(redis_client: Any) -> None:
    answers = Answers(redis_client)
    answer = AnswerRef("slack", "T1", "C1", "1700.000001")
    assert await answers.run_of(answer) is None
    await answers.remember(answer, "run-1", "1700.000000")
    assert await answers.run_of(answer) == AnsweredRun("run-1", "1700.000000")
    assert await answers.run_of(AnswerRef("slack", "T2", "C1", "1700.000001")) is None
