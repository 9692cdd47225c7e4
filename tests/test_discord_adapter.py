"""The Discord adapter with the real discord.py against the fake Discord (no core)."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from pydantic import SecretStr

from adapters.discord import DiscordAdapter, create_adapter
from bridge.adapter import Adapter, StatusAdapter
from bridge.errors import ConfigError, PermanentPlatformError, PlatformError
from bridge.models import Reply, ThreadKey
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_faults import Broken
from tests.fixtures_discord import RecordingInbox, discord_settings, listening

_UNAVAILABLE = b'{"message": "Service Unavailable", "code": 0}'


async def test_mention_in_text_channel_is_submitted_keyed_to_its_future_thread(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("alice")
    posted = await fake_discord.post(
        fake_discord.text_channel["id"], user, "what is my pension?", mention_bot=True
    )

    [message] = await recording_inbox.wait_for(1)

    guild, channel = fake_discord.guild_id, fake_discord.text_channel["id"]
    assert message.thread == ThreadKey("discord", guild, channel, posted["id"])
    assert message.text == "what is my pension?"
    assert message.mentions_bot
    assert message.user_id == user["id"]
    assert message.ticket_id == posted["id"]
    assert message.permalink == f"https://discord.com/channels/{guild}/{channel}/{posted['id']}"


async def _mention(fake: FakeDiscord, inbox: RecordingInbox, text: str = "hello") -> ThreadKey:
    user = fake.user("alice")
    await fake.post(fake.text_channel["id"], user, text, mention_bot=True)
    messages = await inbox.wait_for(len(inbox.messages) + 1)
    return messages[-1].thread


async def test_first_reply_starts_the_thread_from_the_message_then_posts_in_it(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox, "what is my pension?")

    sent_id = await discord_listener.send(
        Reply(thread=key, text="An answer.", idempotency_key="m1")
    )

    [thread_call] = fake_discord.calls_to("POST", rf"/channels/\d+/messages/{key.thread}/threads")
    assert thread_call.status == 201
    assert thread_call.json["name"] == "what is my pension?"
    [posted] = fake_discord.bot_messages(key.thread)
    assert posted["id"] == sent_id
    assert posted["content"] == "An answer."


async def test_every_send_disables_mentions_and_carries_an_enforced_nonce_on_the_wire(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)

    await discord_listener.send(
        Reply(thread=key, text="@everyone look <@&1> <@2>", idempotency_key="m1")
    )

    [call] = fake_discord.calls_to("POST", rf"/channels/{key.thread}/messages")
    assert call.json["allowed_mentions"] == {"parse": []}  # nobody: no users, roles, @everyone
    assert call.json["enforce_nonce"] is True
    assert 0 < len(call.json["nonce"]) <= 25


async def test_a_retried_send_posts_nothing_twice(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    reply = Reply(thread=key, text="x" * 3000, idempotency_key="agent-msg-7")

    first = await discord_listener.send(reply)
    second = await discord_listener.send(reply)

    assert first == second
    assert len(fake_discord.bot_messages(key.thread)) == 2
    assert len(fake_discord.calls_to("POST", rf"/channels/{key.thread}/messages")) == 4


async def test_a_long_answer_arrives_in_order_in_parts_within_the_limit_with_fences_intact(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    code = "```python\n" + "\n".join(f"value_{i} = {i}  # padding" for i in range(120)) + "\n```"
    text = "\n\n".join([f"Paragraph {i}. " + "words " * 150 for i in range(4)] + [code, "The end."])

    await discord_listener.send(Reply(thread=key, text=text, idempotency_key="long"))

    parts = [m["content"] for m in fake_discord.bot_messages(key.thread)]
    assert len(parts) >= 3
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[0].startswith("Paragraph 0.")
    assert parts[-1].endswith("The end.")
    joined = "".join(parts)
    assert all(f"value_{i} = {i}" in joined for i in range(120))


async def test_a_rate_limited_post_is_retried_after_retry_after_and_lands_once(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    fake_discord.rate_limit("POST", rf"/channels/{key.thread}/messages", retry_after=0.3)

    await discord_listener.send(Reply(thread=key, text="after the limit", idempotency_key="r"))

    statuses = [
        c.status for c in fake_discord.calls_to("POST", rf"/channels/{key.thread}/messages")
    ]
    assert statuses == [429, 200]
    assert [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["after the limit"]


async def test_a_503_on_a_post_is_retried_by_the_adapter_alone_and_lands_once(
    fake_discord: FakeDiscord, recording_inbox: RecordingInbox
) -> None:
    # discord.py repeats 500/502/504/524 itself but raises a 503 at once: the adapter's one
    # retry layer takes it (the enforced nonce makes a repeated post safe).
    fast = discord_settings(
        fake_discord, agent_attempts=3, agent_backoff_seconds=0.01, agent_backoff_max_seconds=0.02
    )
    async with listening(fake_discord, recording_inbox, settings=fast) as adapter:
        key = await _mention(fake_discord, recording_inbox)
        path = rf"/channels/{key.thread}/messages"
        fake_discord.broken.append(Broken("POST", re.compile(path), 2, 503, _UNAVAILABLE))
        await adapter.send(Reply(thread=key, text="after the outage", idempotency_key="u"))
        assert [c.status for c in fake_discord.calls_to("POST", path)] == [503, 503, 200]
        assert [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["after the outage"]
        fake_discord.broken.append(Broken("POST", re.compile(path), 10, 503, _UNAVAILABLE))
        with pytest.raises(PlatformError):
            await adapter.send(Reply(thread=key, text="still down", idempotency_key="v"))
        assert [c.status for c in fake_discord.calls_to("POST", path)][3:] == [503] * 3


async def test_a_post_whose_answer_is_cut_short_lands_once_and_returns_its_id(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    # A 200 with a truncated body (a proxy cut it): discord.py raises ValueError, the message
    # may exist. The adapter repeats the post with its enforced nonce: Discord answers with the
    # message it already has.
    key = await _mention(fake_discord, recording_inbox)
    path = rf"/channels/{key.thread}/messages"
    fake_discord.break_next("POST", path, handled=True)

    sent_id = await discord_listener.send(Reply(thread=key, text="cut", idempotency_key="c"))

    [message] = fake_discord.bot_messages(key.thread)
    assert (message["content"], message["id"]) == ("cut", sent_id)
    assert [c.status for c in fake_discord.calls_to("POST", path)] == [200, 200]


async def test_a_post_whose_answers_stay_broken_fails_as_a_platform_error_posted_once(
    fake_discord: FakeDiscord, recording_inbox: RecordingInbox
) -> None:
    fast = discord_settings(
        fake_discord, agent_attempts=3, agent_backoff_seconds=0.01, agent_backoff_max_seconds=0.02
    )
    async with listening(fake_discord, recording_inbox, settings=fast) as adapter:
        key = await _mention(fake_discord, recording_inbox)
        path = rf"/channels/{key.thread}/messages"
        fake_discord.break_next("POST", path, times=10, handled=True)
        with pytest.raises(PlatformError) as failure:
            await adapter.send(Reply(thread=key, text="never read", idempotency_key="n"))
        assert not isinstance(failure.value, PermanentPlatformError)
        assert len(fake_discord.calls_to("POST", path)) == 3
        assert [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["never read"]


async def test_a_thread_start_whose_answer_is_cut_short_still_gets_the_reply_once(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox, "a question")
    starter = rf"/channels/\d+/messages/{key.thread}"
    fake_discord.break_next("GET", starter)
    fake_discord.break_next("POST", starter + "/threads", handled=True)

    await discord_listener.send(Reply(thread=key, text="in the thread", idempotency_key="t"))

    assert fake_discord.channels[key.thread]["type"] == 11
    assert [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["in the thread"]
    starts = fake_discord.calls_to("POST", starter + "/threads")
    assert [c.status for c in starts] == [200, 400]  # the repeat meets 160004: it exists


async def test_an_existing_thread_is_reused_when_a_fresh_process_meets_160004(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    await discord_listener.send(Reply(thread=key, text="one", idempotency_key="a"))
    worker = DiscordAdapter(discord_settings(fake_discord, roles={"workers"}))
    await worker.start()
    try:
        await worker.send(Reply(thread=key, text="two", idempotency_key="b"))
    finally:
        await worker.aclose()

    statuses = [
        c.status for c in fake_discord.calls_to("POST", r"/channels/\d+/messages/\d+/threads")
    ]
    assert statuses == [201, 400]
    assert [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["one", "two"]
    assert fake_discord.gateway.identifies == 1  # the worker-only process never listened


async def test_posting_unarchives_an_archived_thread_and_a_locked_one_fails_permanently(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    await discord_listener.send(Reply(thread=key, text="first", idempotency_key="a"))

    await fake_discord.set_thread_state(key.thread, archived=True)
    await discord_listener.send(Reply(thread=key, text="second", idempotency_key="b"))
    assert fake_discord.channels[key.thread]["thread_metadata"]["archived"] is False

    await fake_discord.set_thread_state(key.thread, archived=True, locked=True)
    with pytest.raises(PermanentPlatformError, match="locked"):
        await discord_listener.send(Reply(thread=key, text="third", idempotency_key="c"))
    assert [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["first", "second"]


async def test_status_keeps_typing_in_the_thread_until_cleared(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)

    await discord_listener.set_status(key, "Thinking…")
    await fake_discord.wait_until(
        lambda: bool(fake_discord.calls_to("POST", rf"/channels/{key.thread}/typing"))
    )
    await discord_listener.set_status(key, None)

    assert fake_discord.channels[key.thread]["type"] == 11  # the thread exists before the answer
    assert discord_listener.typing_threads() == set()


async def test_a_reply_in_the_bots_thread_continues_without_a_mention(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    await discord_listener.send(Reply(thread=key, text="answer", idempotency_key="a"))
    user = fake_discord.user("bob")

    await fake_discord.post(key.thread, user, "and a follow-up")

    follow_up = (await recording_inbox.wait_for(2))[1]
    assert follow_up.thread == key
    assert not follow_up.mentions_bot
    assert follow_up.text == "and a follow-up"
    # The bot's own post came back over the gateway and was not submitted.
    assert all(m.user_id != fake_discord.bot["id"] for m in recording_inbox.messages)


async def test_a_forum_post_is_one_conversation_keyed_to_the_post(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    starter = await fake_discord.forum_post(fake_discord.user("carol"), "Transfer?", "How do I…")

    [message] = await recording_inbox.wait_for(1)
    forum = fake_discord.forum_channel["id"]
    assert message.thread == ThreadKey("discord", fake_discord.guild_id, forum, starter["id"])
    assert message.ticket_id == starter["id"]

    await discord_listener.send(Reply(thread=message.thread, text="Like so.", idempotency_key="f"))
    assert [m["content"] for m in fake_discord.bot_messages(starter["id"])] == ["Like so."]
    assert not fake_discord.calls_to("POST", r"/channels/\d+/messages/\d+/threads")


async def test_a_direct_message_is_one_conversation_per_dm_channel(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("dave")
    dm = fake_discord.dm_channel(user)

    await fake_discord.post(dm["id"], user, "hi there")
    await fake_discord.post(dm["id"], user, "reset")

    first, second = await recording_inbox.wait_for(2)
    assert first.thread == second.thread == ThreadKey("discord", "@dm", dm["id"], dm["id"])
    assert first.is_dm
    await discord_listener.send(Reply(thread=first.thread, text="Hello!", idempotency_key="d"))
    assert [m["content"] for m in fake_discord.bot_messages(dm["id"])] == ["Hello!"]


async def test_a_message_sent_while_the_gateway_was_down_arrives_after_resume(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    await _mention(fake_discord, recording_inbox, "before")

    await fake_discord.gateway.drop()
    await _mention(fake_discord, recording_inbox, "during")
    await fake_discord.gateway.connected.wait()

    assert [m.text for m in recording_inbox.messages] == ["before", "during"]
    assert fake_discord.gateway.resumes == 1
    assert fake_discord.gateway.identifies == 1


async def test_a_redis_outage_is_waited_out_instead_of_losing_the_message(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    recording_inbox.failures_before_success = 2

    await _mention(fake_discord, recording_inbox, "survives")

    assert [m.text for m in recording_inbox.messages] == ["survives"]


async def test_start_up_fails_with_portal_instructions_when_message_content_is_not_enabled(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.gateway.enabled_privileged_intents = 0
    adapter = DiscordAdapter(discord_settings(fake_discord))
    try:
        with pytest.raises(ConfigError, match="MESSAGE CONTENT INTENT") as failure:
            await adapter.start()
    finally:
        await adapter.aclose()
    assert "discord.com/developers/applications" in str(failure.value)


async def test_start_up_fails_with_instructions_when_the_token_is_wrong(
    fake_discord: FakeDiscord,
) -> None:
    settings = discord_settings(fake_discord, discord={"bot_token": SecretStr("not-the-token")})
    adapter = DiscordAdapter(settings)
    try:
        with pytest.raises(ConfigError, match="Reset Token"):
            await adapter.start()
    finally:
        await adapter.aclose()


async def test_a_process_with_explicit_shard_ids_identifies_as_that_shard_and_hears_its_guild(
    fake_discord: FakeDiscord, recording_inbox: RecordingInbox
) -> None:
    shard = (int(fake_discord.guild_id) >> 22) % 2  # Discord's guild -> shard rule
    settings = discord_settings(fake_discord, discord={"shard_count": 2, "shard_ids": [shard]})
    adapter = DiscordAdapter(settings)
    await adapter.start()
    task = asyncio.create_task(adapter.run(recording_inbox))
    try:
        assert [s.shard for s in fake_discord.gateway.sessions.values()] == [(shard, 2)]
        await _mention(fake_discord, recording_inbox, "sharded hello")
        assert [m.text for m in recording_inbox.messages] == ["sharded hello"]
    finally:
        await adapter.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def test_the_adapter_offers_the_adapter_and_status_contracts(fake_discord: FakeDiscord) -> None:
    adapter = create_adapter(discord_settings(fake_discord))

    assert isinstance(adapter, Adapter)
    assert isinstance(adapter, StatusAdapter)
    assert adapter.name == "discord"


async def test_a_mention_of_the_bots_managed_role_opens_a_conversation(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("alice")

    await fake_discord.post(
        fake_discord.text_channel["id"], user, "what is my pension?", mention_bot_role=True
    )

    [message] = await recording_inbox.wait_for(1)
    assert message.mentions_bot
    assert message.text == "what is my pension?"
