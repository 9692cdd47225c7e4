"""Agent status in Discord threads: typing, the status message edited in place, failures."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.discord import DiscordAdapter
from bridge.adapter import AcceptSignAdapter
from bridge.config import FileConfig, Policy, Routing
from bridge.errors import PlatformError
from bridge.models import ThreadKey
from tests.fakes.discord import FakeDiscord
from tests.fixtures_core import wait_until
from tests.fixtures_discord import RecordingInbox, discord_bridge_settings, discord_runtime
from tests.fixtures_emulator import hold_answers, release_answers


async def _mention(fake: FakeDiscord, inbox: RecordingInbox) -> ThreadKey:
    await fake.post(fake.text_channel["id"], fake.user("alice"), "hello", mention_bot=True)
    return (await inbox.wait_for(len(inbox.messages) + 1))[-1].thread


async def test_a_failing_typing_call_is_handled_not_left_in_an_unretrieved_task(
    fake_discord: FakeDiscord,
    discord_listener: DiscordAdapter,
    recording_inbox: RecordingInbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord")
    key = await _mention(fake_discord, recording_inbox)
    typing = rf"/channels/{key.thread}/typing"
    fake_discord.break_next("POST", typing)  # a proxy cut the answer short
    unhandled: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        await discord_listener.set_status(key, "Thinking…")
        await fake_discord.wait_until(lambda: bool(fake_discord.calls_to("POST", typing)))
        # Either the failure was handled (logged) or the typing task died with it.
        failed = "typing indicator failed"
        await wait_until(lambda: failed in caplog.text or not discord_listener.typing_threads())
        await discord_listener.set_status(key, None)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)

    assert [c.get("message") for c in unhandled] == []
    assert "typing indicator failed" in caplog.text


async def test_agent_status_texts_are_one_message_edited_in_place_then_deleted(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    seen: list[str] = []
    fake_discord.observers.append(lambda m: seen.append(m["content"]))

    await discord_listener.set_status(key, "Thinking…")  # the core's generic text: typing only
    await discord_listener.set_status(key, "Reading your question…")
    await fake_discord.wait_until(lambda: bool(fake_discord.bot_messages(key.thread)))
    await discord_listener.set_status(key, "Looking up pension rules…")
    edits = rf"/channels/{key.thread}/messages/\d+"
    await fake_discord.wait_until(lambda: bool(fake_discord.calls_to("PATCH", edits)))
    [status] = fake_discord.bot_messages(key.thread)
    assert status["content"] == "-# Looking up pension rules…"
    assert status["flags"] & (1 << 12)  # SUPPRESS_NOTIFICATIONS: nobody is pinged by a status

    await discord_listener.set_status(key, None)

    assert fake_discord.bot_messages(key.thread) == []
    [deleted] = fake_discord.calls_to("DELETE", edits)
    assert deleted.path.endswith(status["id"])
    assert seen == ["-# Reading your question…"]  # posted once, the rest were edits


async def test_a_status_message_whose_answer_is_cut_short_is_still_deleted_at_the_end(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    # The status message is created but its 200 arrives truncated: without its id it could
    # never be edited or deleted. Asked again with the same nonce, Discord names it.
    key = await _mention(fake_discord, recording_inbox)
    posts = rf"/channels/{key.thread}/messages"
    fake_discord.break_next("POST", posts, handled=True)

    await discord_listener.set_status(key, "Reading your question…")
    await fake_discord.wait_until(lambda: len(fake_discord.calls_to("POST", posts)) >= 2)
    await discord_listener.set_status(key, None)

    assert fake_discord.bot_messages(key.thread) == []
    assert len(fake_discord.calls_to("DELETE", posts + r"/\d+")) == 1


async def test_a_burst_of_status_texts_stays_inside_the_channel_write_bucket(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    bucket = fake_discord.limit_channel_writes(5, 5.0)
    posts = rf"/channels/{key.thread}/messages"
    gate = fake_discord.hold_next("POST", posts)  # the status message's post, held

    await discord_listener.set_status(key, "step 0")
    await fake_discord.wait_until(lambda: gate.waiting == 1)
    for step in range(1, 20):  # 19 more texts while the first is still being posted
        await discord_listener.set_status(key, f"step {step}")
    gate.open()
    await fake_discord.wait_until(
        lambda: [m["content"] for m in fake_discord.bot_messages(key.thread)] == ["-# step 19"]
    )
    await discord_listener.set_status(key, None)
    await fake_discord.wait_until(lambda: fake_discord.bot_messages(key.thread) == [])

    # The first text, then (an edit interval later) only the latest one, then the delete.
    here = re.compile(posts + r"(/\d+)?")
    writes = [(c.method, c.status) for c in fake_discord.calls if here.fullmatch(c.path)]
    assert writes == [("POST", 200), ("PATCH", 200), ("DELETE", 204)]
    assert bucket.rejected == 0


async def test_the_agents_status_shows_in_the_thread_until_the_answer_replaces_it(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> None:
    routing = Routing(default_agent="pensions-questions-latest")
    config = FileConfig(routing=routing, policy=Policy())
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord, file=config)
    seen: list[str] = []
    fake_discord.observers.append(lambda m: seen.append(m["content"]))
    user = fake_discord.user("alice")
    hold_answers(emulator)  # the agent works after its status texts until the status shows

    async with discord_runtime(settings, redis_client, emulator):
        posted = await fake_discord.post(
            fake_discord.text_channel["id"], user, "When can I retire?", mention_bot=True
        )
        await fake_discord.wait_until(lambda: len(seen) == 2)  # the question, then the status
        await wait_until(lambda: emulator.faults.answers_held == 1)
        release_answers(emulator)
        await fake_discord.wait_until(lambda: any("Turn 1" in text for text in seen))

    [answer] = fake_discord.bot_messages(posted["id"])
    assert answer["content"].startswith("Turn 1.")
    # After the user's message: one status message (whichever text was current when it was
    # posted; the agent streams both at once), then the answer.
    assert seen[1] in ("-# Reading your question…", "-# Looking up pension rules…")
    assert len(seen) == 3
    assert seen[-1] == answer["content"]
    deleted = fake_discord.calls_to("DELETE", rf"/channels/{posted['id']}/messages/\d+")
    assert len(deleted) == 1


async def test_the_accept_sign_is_one_typing_call_in_the_thread_and_leaves_no_loop(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)

    await discord_listener.show_accepted(key)

    typing = fake_discord.calls_to("POST", rf"/channels/{key.thread}/typing")
    assert [c.status for c in typing] == [204]
    assert fake_discord.channels[key.thread]["type"] == 11  # the thread exists at once
    assert discord_listener.typing_threads() == set()  # nothing in this process to clear
    assert isinstance(discord_listener, AcceptSignAdapter)  # so the core calls it


async def test_a_failing_accept_sign_is_a_platform_error_not_a_crash(
    fake_discord: FakeDiscord, discord_listener: DiscordAdapter, recording_inbox: RecordingInbox
) -> None:
    key = await _mention(fake_discord, recording_inbox)
    fake_discord.break_next("POST", rf"/channels/{key.thread}/typing")

    with pytest.raises(PlatformError):
        await discord_listener.show_accepted(key)


async def test_typing_goes_on_after_the_accept_sign_while_the_agent_works(
    tmp_path: Path,
    redis_client: aioredis.Redis,
    emulator: Any,
    fake_discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One typing call shows ~10 s: a turn longer than that must keep typing after the accept
    # sign, even though the worker's first status comes right after it.
    monkeypatch.setattr("adapters.discord.status.TYPING_EVERY_SECONDS", 0.2)
    monkeypatch.setattr("adapters.discord.outbound.TYPING_EVERY_SECONDS", 0.2)
    config = FileConfig(routing=Routing(default_agent="parrot"), policy=Policy())
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord, file=config)
    hold_answers(emulator)

    async with discord_runtime(settings, redis_client, emulator) as (_, adapter):
        posted = await fake_discord.post(
            fake_discord.text_channel["id"], fake_discord.user("alice"), "hi", mention_bot=True
        )
        typing = rf"/channels/{posted['id']}/typing"
        await wait_until(lambda: emulator.faults.answers_held == 1)
        # The accept sign, then the loop's calls while the answer is held.
        await fake_discord.wait_until(lambda: len(fake_discord.calls_to("POST", typing)) >= 4)
        release_answers(emulator)
        await fake_discord.wait_until(lambda: bool(fake_discord.bot_messages(posted["id"])))
        await wait_until(lambda: adapter.typing_threads() == set())

    [answer] = fake_discord.bot_messages(posted["id"])
    assert answer["content"] == "You said: hi"
