"""Outbound bounds: parts per answer, no user pings on Slack by default, slash replays deduped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.slack.format import neutralise_pings
from bridge.parts import bounded, note
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, slash_command, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_discord import discord_bridge_settings, discord_runtime
from tests.fixtures_slack import slack_bridge


def test_parts_beyond_the_maximum_become_one_note() -> None:
    parts = [f"p{i}" for i in range(7)]
    assert bounded(parts, 7) == parts
    assert bounded(parts, 3) == ["p0", "p1", note(2, 7)]
    assert "7 messages" in note(2, 7)


def test_user_and_group_pings_are_neutralised_unless_user_mentions_are_allowed() -> None:
    text = "ask <@U123> or <!subteam^S1|team> or <!channel>"
    wire = neutralise_pings(text)
    assert "<@" not in wire
    assert "<!" not in wire
    assert wire.replace("\u200d", "") == text
    assert neutralise_pings(text, users=False).startswith("ask <@U123>")
    assert "<!" not in neutralise_pings(text, users=False)


async def test_a_huge_slack_answer_is_capped_with_a_note(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    async with slack_bridge(fake_slack, emulator, redis_client, max_reply_parts=3) as b:
        long = "\n\n".join("x" * 5_000 for _ in range(10))  # 50,000 chars: 5 or more parts
        dm = user_message(b.slack, channel="D0001", channel_type="im", text=long)
        assert (await b.events.send(envelope(b.slack, dm))).status == 200
        await b.wait_replies("D0001", dm["ts"], count=3)
        replies = b.replies_in("D0001", dm["ts"])
        assert len(replies) == 3
        assert replies[-1]["text"].startswith("(This answer was ")
        assert len(b.slack.calls_to("chat.postMessage")) == 3


async def test_user_pings_in_agent_text_ping_nobody_on_slack(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        text = "tell <@U0042> and <!subteam^S0001|support> and @here"
        dm = user_message(b.slack, channel="D0001", channel_type="im", text=text)
        assert (await b.events.send(envelope(b.slack, dm))).status == 200
        [reply] = await b.wait_replies("D0001", dm["ts"])
        wire = reply["text"]
        assert "<@" not in wire
        assert "<!" not in wire
        assert wire.replace("\u200d", "") == f"You said: {text}"


async def test_a_replayed_slash_ask_gives_one_thread_and_one_turn(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        form = slash_command(b.slack, "ask what is a SIPP?")
        deliveries = [await b.events.send_command(form) for _ in range(5)]
        assert all(d.status == 200 for d in deliveries)
        assert sum("already received" in d.body for d in deliveries) == 4
        roots = [m for m in b.slack.posted("C0001") if "thread_ts" not in m]
        assert len(roots) == 1
        await b.wait_replies("C0001", roots[0]["ts"])
        assert len(emulator.state.runs) == 1
        fresh = slash_command(b.slack, "ask what is a SIPP?")  # a new invocation is a new ask
        assert "already" not in (await b.events.send_command(fresh)).body


async def test_a_huge_discord_answer_is_capped_with_a_note(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord, max_reply_parts=2)
    async with discord_runtime(settings, redis_client, emulator):
        user = fake_discord.user("erin")
        long = "\n".join("y" * 1_500 for _ in range(6))  # 9,000 chars: 5+ parts of 2,000
        posted = await fake_discord.post(
            fake_discord.text_channel["id"], user, long, mention_bot=True
        )
        await wait_until(lambda: len(fake_discord.bot_messages(posted["id"])) >= 2)
        contents = [m["content"] for m in fake_discord.bot_messages(posted["id"])]
        assert len(contents) == 2
        assert contents[-1].startswith("(This answer was")


async def test_slack_user_mentions_can_be_allowed_but_broadcasts_never(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_SLACK_USER_MENTIONS", "true")
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        dm = user_message(b.slack, channel="D0001", channel_type="im", text="ask <@U0042> <!here>")
        assert (await b.events.send(envelope(b.slack, dm))).status == 200
        [reply] = await b.wait_replies("D0001", dm["ts"])
        assert "<@U0042>" in reply["text"]
        assert "<!" not in reply["text"]
