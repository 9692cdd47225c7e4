"""Every other Engage Smarter endpoint through the client, against the emulator over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.engage import errors
from bridge.engage.client import EngageClient
from bridge.engage.models import AgentMessage, FeedbackUpsert, UserMessage

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[EngageClient]:
    async with EngageClient(
        base_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id, timeout=10.0
    ) as engage:
        yield engage


async def test_credentials_and_agents(client: EngageClient) -> None:
    assert await client.validate_me() is True
    agents = await client.list_agents()
    assert {"parrot", "pensions-questions-latest"} <= set(agents)
    assert agents["parrot"].name == "parrot"
    assert await client.validate_agent("parrot") is True
    assert await client.validate_agent("no-such-agent") is False


async def test_clone_save_and_the_three_searches(client: EngageClient) -> None:
    original = await client.create_conversation(data={"n": 1}, source="web")
    added = await client.add_messages(
        original.id, [UserMessage(content="a"), AgentMessage(content="b")]
    )
    assert [m.role for m in added] == ["user", "agent"]
    clone = await client.clone_conversation(added[0].id, source="cloned")
    assert clone.id != original.id
    assert clone.cloned_from_message_id == added[0].id
    assert [m.content for m in await client.get_messages(clone.id)] == ["a"]

    assert (await client.save_conversation(original.id)).is_saved is True
    saved = await client.search_saved_conversations()
    assert [c.id for c in saved] == [original.id]
    assert (await client.unsave_conversation(original.id)).is_saved is False
    assert await client.search_saved_conversations() == []

    oldest_first = await client.search_own_conversations(reversed=False)
    assert [c.id for c in oldest_first] == [original.id, clone.id]
    assert {c.id for c in await client.search_org_conversations()} == {original.id, clone.id}


async def test_conversation_runs_feedback_and_tags(client: EngageClient) -> None:
    cid = (await client.create_conversation()).id
    answer = await client.chat(cid, [UserMessage(content="x")], agent="parrot")
    runs = await client.get_conversation_runs(cid)
    assert [r.id for r in runs] == [answer[0].run_id]
    assert runs[0].agent == "parrot"

    feedback = await client.upsert_run_feedback(runs[0].id, FeedbackUpsert(thumbs="up"))
    again = await client.upsert_run_feedback(runs[0].id, FeedbackUpsert(thumbs="down"))
    assert feedback.id == again.id
    assert [f.thumbs for f in await client.get_conversation_feedback(cid)] == ["down"]
    assert [f.thumbs for f in await client.get_run_feedback(runs[0].id)] == ["down"]

    tag = await client.create_tag("escalated", description="needs a human")
    assert [t.id for t in await client.add_conversation_tag(cid, tag.id)] == [tag.id]
    assert [t.name for t in await client.get_conversation_tags(cid)] == ["escalated"]
    assert [c.id for c in await client.search_own_conversations(tag_id=tag.id)] == [cid]
    assert [c.id for c in await client.get_tagged_conversations(tag.id)] == [cid]
    assert await client.remove_conversation_tag(cid, tag.id) == []


async def test_stateless_runs(client: EngageClient) -> None:
    history = [
        UserMessage(content="hi"),
        AgentMessage(content="You said: hi"),
        UserMessage(content="again"),
    ]
    answer = await client.run_chat(history, agent="parrot", data={"via": "runs"})
    assert answer[-1].content == "You said: again"
    run_id = answer[-1].run_id
    streamed = [m async for m in client.run_chat_stream(history, agent="pensions-questions-latest")]
    assert streamed[0].is_status
    assert streamed[-1].is_agent

    run = await client.get_run(run_id)
    assert run.agent == "parrot"
    conversation = await client.get_conversation(run.conversation_id)
    assert conversation.data == {"via": "runs"}
    assert [m.content for m in await client.get_run_messages(run_id)][-1] == "You said: again"
    assert run_id in {r.id for r in await client.search_own_runs(agent="parrot")}

    tag = await client.create_tag("run-tag")
    assert [t.id for t in await client.add_run_tag(run_id, tag.id)] == [tag.id]
    assert [t.id for t in await client.get_run_tags(run_id)] == [tag.id]
    assert [r.id for r in await client.get_tagged_runs(tag.id)] == [run_id]
    assert await client.remove_run_tag(run_id, tag.id) == []


async def test_tag_lifecycle(client: EngageClient) -> None:
    tag = await client.create_tag("billing")
    with pytest.raises(errors.AlreadyExists):
        await client.create_tag("billing")
    assert (await client.get_tag(tag.id)).name == "billing"
    updated = await client.update_tag(tag.id, description="money questions")
    assert updated.description == "money questions"
    assert [t.id for t in await client.list_tags(search="money")] == [tag.id]
    assert await client.delete_tag(tag.id) is True
    with pytest.raises(errors.NotFound):
        await client.get_tag(tag.id)
