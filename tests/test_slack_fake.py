"""The fake Slack enforces Slack's limits, as seen through the real AsyncWebClient."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack


@pytest.fixture
def client(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)


async def test_text_longer_than_40000_is_silently_truncated(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(channel="C1", text="a" * 45_000)
    assert len(response["message"]["text"]) == 40_000


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"markdown_text": "a" * 12_001}, "msg_too_long"),
        ({"markdown_text": "a", "text": "b"}, "markdown_text_conflict"),
        (
            {
                "text": "x",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}],
            },
            "invalid_blocks",
        ),
        ({"text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"channel": "CMISSING", "text": "x"}, "channel_not_found"),
    ],
)
async def test_post_message_limits_are_enforced(
    fake_slack: FakeSlack, client: AsyncWebClient, kwargs: dict[str, object], error: str
) -> None:
    fake_slack.missing_channels.add("CMISSING")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(**{"channel": "C1", **kwargs})
    assert caught.value.response["error"] == error


async def test_bad_token_is_invalid_auth(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as caught:
        await client.auth_test()
    assert caught.value.response["error"] == "invalid_auth"


async def test_rate_limit_answers_429_with_integer_retry_after(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    fake_slack.rate_limit_per_channel = True
    await client.chat_postMessage(channel="C1", text="one")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="two")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    await client.chat_postMessage(channel="C2", text="other channel is fine")


async def test_thread_replies_metadata_and_permalink(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel="C1", text="root")
    meta = {"event_type": "engage_reply", "event_payload": {"key": "k"}}
    reply = await client.chat_postMessage(
        channel="C1", thread_ts=root["ts"], text="reply", metadata=meta
    )
    replies = await client.conversations_replies(
        channel="C1", ts=root["ts"], include_all_metadata=True
    )
    assert [m["ts"] for m in replies["messages"]] == [root["ts"], reply["ts"]]
    assert replies["messages"][1]["metadata"] == meta
    link = await client.chat_getPermalink(channel="C1", message_ts=reply["ts"])
    assert link["permalink"].endswith(f"?thread_ts={root['ts']}&cid=C1")


async def test_update_delete_and_reactions_are_recorded(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C1", text="draft")
    await client.chat_update(channel="C1", ts=posted["ts"], text="final")
    assert fake_slack.posted("C1")[0]["text"] == "final"
    await client.reactions_add(channel="C1", timestamp=posted["ts"], name="eyes")
    with pytest.raises(SlackApiError):
        await client.reactions_add(channel="C1", timestamp=posted["ts"], name="eyes")
    await client.chat_delete(channel="C1", ts=posted["ts"])
    assert fake_slack.posted("C1") == []
    assert [c.method for c in fake_slack.calls][:3] == [
        "chat.postMessage",
        "chat.update",
        "reactions.add",
    ]
