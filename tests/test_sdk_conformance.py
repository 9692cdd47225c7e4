"""The official `engagesmarter` SDK runs the documentation's walkthrough against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from engagesmarter import Client
from engagesmarter.errors import (
    ForbiddenApiError,
    NotFoundApiError,
    UnauthorizedApiError,
    UnprocessableEntityApiError,
)
from engagesmarter.schemas.conversations import ConversationCreate, ConversationUpdate
from engagesmarter.schemas.messages import MessageRead, UserMessage

from tests.fixtures_emulator import Emulator

AGENT = "pensions-questions-latest"


@pytest.fixture
def sdk(emulator: Emulator) -> Iterator[Client]:
    with Client(api_url=emulator.url, api_key=emulator.api_key, org_id=emulator.org_id) as client:
        yield client


def test_walkthrough_create_chat_history_search_and_metadata(sdk: Client) -> None:
    assert sdk.validate().success is True
    plain = sdk.conversations.create()
    conversation = sdk.conversations.create(
        conversation=ConversationCreate(data={"user": "ana"}, source="test_source")
    )
    assert (plain.data, plain.source) == ({}, "")
    assert (conversation.data, conversation.source) == ({"user": "ana"}, "test_source")

    cid = conversation.id
    first = sdk.conversations.chat_with_agent(
        conversation_id=cid, messages=[UserMessage(content="Hi, my name is Ana")], agent=AGENT
    )
    second = sdk.conversations.chat_with_agent(
        conversation_id=cid, messages=[UserMessage(content="When can I retire?")], agent=AGENT
    )
    assert isinstance(first, list)
    assert isinstance(second, list)
    assert [m.role for m in first] == ["agent"]
    assert second[0].content.startswith("Turn 2. Nice to see you again, Ana.")

    history = sdk.conversations.get_conversation_message_history(conversation_id=cid)
    assert [m.role for m in history] == ["user", "agent", "user", "agent"]

    metadata = sdk.conversations.get_conversation_metadata(conversation_id=cid)
    assert (metadata.data, metadata.source) == ({"user": "ana"}, "test_source")
    assert metadata.summary == "Hi, my name is Ana"
    updated = sdk.conversations.update_conversation_metadata(
        conversation_id=cid, conversation=ConversationUpdate(data={"different": "data"})
    )
    assert (updated.data, updated.source) == ({"different": "data"}, "test_source")

    runs = sdk.conversations.get_conversation_runs(conversation_id=cid)
    assert [r.agent for r in runs] == [AGENT, AGENT]


def test_search_own_conversations_pages_newest_first(sdk: Client) -> None:
    ids = [sdk.conversations.create().id for _ in range(12)]
    page = sdk.conversations.search_own_conversations(limit=10, offset=0)
    rest = sdk.conversations.search_own_conversations(limit=10, offset=10)
    oldest = sdk.conversations.search_own_conversations(limit=3, offset=0, reversed=False)
    assert len(page) == 10
    assert [c.id for c in page + rest] == ids[::-1]
    assert [c.id for c in oldest] == ids[:3]


def test_streaming_through_the_sdk_yields_status_then_agent(sdk: Client) -> None:
    cid = sdk.conversations.create().id
    stream = sdk.conversations.chat_with_agent(
        conversation_id=cid, messages=[UserMessage(content="Hello")], agent=AGENT, stream=True
    )
    messages = list(stream)
    assert all(isinstance(m, MessageRead) for m in messages)
    assert [m.role for m in messages] == ["status", "status", "agent"]
    assert messages[-1].name == AGENT


def test_sdk_covers_saved_tags_messages_runs_and_agents(sdk: Client) -> None:
    cid = sdk.conversations.create().id
    added = sdk.conversations.add_messages_to_conversation_history(
        conversation_id=cid, messages=[UserMessage(content="queued")]
    )
    saved = sdk.conversations.save_conversation(conversation_id=cid)
    tag = sdk.tags.create(name="vip", description="important")
    tags = sdk.conversations.add_tag_to_conversation(conversation_id=cid, tag_id=tag.id)
    reply = sdk.runs.chat_with_agent(messages=[UserMessage(content="stateless")], agent="parrot")
    agents = sdk.agents.list()
    assert added[0].content == "queued"
    assert saved.is_saved is True
    assert [t.id for t in tags] == [tag.id]
    assert [c.id for c in sdk.tags.get_tagged_conversations(tag_id=tag.id)] == [cid]
    assert isinstance(reply, list)
    assert reply[0].content == "You said: stateless"
    assert sdk.runs.get_run_metadata(run_id=reply[0].run_id).agent == "parrot"
    assert "parrot" in {a.name for a in agents}
    assert sdk.agents.validate_agent(agent="parrot").status.value == "active"
    assert sdk.tags.delete_tag(tag_id=tag.id).success is True


def test_wrong_key_is_unauthorized(emulator: Emulator) -> None:
    client = Client(api_url=emulator.url, api_key="wrong", org_id=emulator.org_id)
    with client, pytest.raises(UnauthorizedApiError):
        client.validate()


def test_wrong_org_is_forbidden(emulator: Emulator) -> None:
    client = Client(api_url=emulator.url, api_key=emulator.api_key, org_id="elsewhere")
    with client, pytest.raises(ForbiddenApiError):
        client.conversations.create()


def test_unknown_conversation_is_not_found(sdk: Client) -> None:
    with pytest.raises(NotFoundApiError):
        sdk.conversations.get_conversation_metadata(conversation_id="no-such-conversation")


def test_malformed_body_is_unprocessable(sdk: Client) -> None:
    cid = sdk.conversations.create().id
    # The SDK's own models cannot express a bad body, so send one through its HTTP layer.
    with pytest.raises(UnprocessableEntityApiError):
        sdk._client.post(f"/v1/conversations/{cid}/messages", content='[{"role": "robot"}]')


def test_sdk_sends_bodies_without_content_type(emulator: Emulator, sdk: Client) -> None:
    seen: list[str | None] = []
    http: httpx.Client = sdk._client._client
    http.event_hooks["request"].append(lambda r: seen.append(r.headers.get("content-type")))
    sdk.conversations.create(conversation=ConversationCreate(source="x"))
    assert seen == [None]
    assert emulator.state.find_conversations(lambda c: c.source == "x")
