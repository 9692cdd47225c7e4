"""Slash commands through the real discord.py: deferred at once, submitted, answered by followup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from adapters.discord import DiscordAdapter
from adapters.discord.agents import choices
from bridge.models import Reply, ThreadKey
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_interactions import AUTOCOMPLETE_RESULT
from tests.fixtures_discord import RecordingInbox, discord_bridge_settings, discord_runtime

DEFERRED_WITH_SOURCE = 5
EPHEMERAL = 1 << 6


def _question(text: str) -> list[dict[str, object]]:
    return [{"name": "question", "type": 3, "value": text}]


async def test_ask_in_a_channel_defers_posts_the_question_and_opens_a_conversation_on_it(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("erin")
    channel = fake_discord.text_channel["id"]

    interaction = await fake_discord.slash("ask", user, channel, _question("Can I retire at 55?"))

    [message] = await recording_inbox.wait_for(1)
    record = fake_discord.interactions[interaction["token"]]
    assert record["responses"] == [{"type": DEFERRED_WITH_SOURCE}]
    [followup] = record["followups"]
    assert "Can I retire at 55?" in followup["content"]
    assert message.thread == ThreadKey("discord", fake_discord.guild_id, channel, followup["id"])
    assert message.text == "Can I retire at 55?"
    assert message.command is None
    assert message.mentions_bot
    assert message.message_id == f"interaction-{interaction['id']}"

    await discord_listener.send(Reply(thread=message.thread, text="Yes.", idempotency_key="x"))
    assert fake_discord.channels[followup["id"]]["parent_id"] == channel
    assert [m["content"] for m in fake_discord.bot_messages(followup["id"])] == ["Yes."]


async def test_reset_in_a_thread_is_submitted_as_a_command_and_acknowledged_privately(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("frank")
    await fake_discord.post(fake_discord.text_channel["id"], user, "hi", mention_bot=True)
    [first] = await recording_inbox.wait_for(1)
    await discord_listener.send(Reply(thread=first.thread, text="Hello", idempotency_key="h"))

    interaction = await fake_discord.slash("reset", user, first.thread.thread)

    second = (await recording_inbox.wait_for(2))[1]
    assert second.thread == first.thread
    assert second.command == "reset"
    record = fake_discord.interactions[interaction["token"]]
    assert record["responses"] == [{"type": DEFERRED_WITH_SOURCE, "data": {"flags": EPHEMERAL}}]
    await fake_discord.wait_until(lambda: bool(record.get("followups")))
    assert "received" in record["followups"][0]["content"]


async def test_agent_takes_the_agent_name_as_its_argument(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("gina")
    dm = fake_discord.dm_channel(user)

    await fake_discord.slash(
        "agent", user, dm["id"], [{"name": "name", "type": 3, "value": "parrot"}]
    )

    [message] = await recording_inbox.wait_for(1)
    assert message.command == "agent parrot"
    assert message.thread == ThreadKey("discord", "@dm", dm["id"], dm["id"])


async def test_a_thread_command_in_a_plain_channel_explains_where_to_use_it(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    user = fake_discord.user("hank")

    interaction = await fake_discord.slash("status", user, fake_discord.text_channel["id"])

    record = fake_discord.interactions[interaction["token"]]
    await fake_discord.wait_until(lambda: bool(record.get("followups")))
    assert "inside a conversation thread" in record["followups"][0]["content"]
    assert recording_inbox.messages == []


async def test_the_commands_are_synced_at_start_up(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter
) -> None:
    names = {c["name"] for c in fake_discord.commands["global"]}

    assert names == {"ask", "agent", "reset", "status", "handoff", "resume", "resolve"}


async def test_the_agent_option_autocompletes_from_the_platforms_agent_list(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    user = fake_discord.user("erin")
    typed = {"name": "name", "type": 3, "value": "pens"}

    async with discord_runtime(settings, redis_client, emulator):
        interaction = await fake_discord.autocomplete(
            "agent", user, fake_discord.text_channel["id"], typed
        )
        record = fake_discord.interactions[interaction["token"]]
        await fake_discord.wait_until(lambda: bool(record["responses"]))

    [response] = record["responses"]
    assert response["type"] == AUTOCOMPLETE_RESULT
    assert response["data"]["choices"] == [
        {"name": "Pensions questions (pensions-questions-latest)",
         "value": "pensions-questions-latest"},
    ]  # fmt: skip


def test_agent_choices_put_name_prefixes_first_and_stay_within_discords_limits() -> None:
    agents = {f"agent-{i:02}": "" for i in range(30)} | {"zeta": "Pensions helper"}

    assert choices(agents, "pens") == [("Pensions helper (zeta)", "zeta")]  # title matches too
    found = choices(agents, "")
    assert len(found) == 25
    assert found[0] == ("agent-00", "agent-00")
    assert choices({"x" * 101: ""}, "") == []  # a value over 100 chars cannot be offered
