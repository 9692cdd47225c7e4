"""Feedback on Discord answers: buttons, the comment modal and reactions reach the Runs API once
(real discord.py, fake Discord, real Redis, the emulator, the real runtime)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.discord.feedback import COMMENT, COMMENT_FIELD, COMMENT_MODAL, DOWN, UP
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_interactions import EPHEMERAL, MODAL
from tests.fakes.discord_wire import Json
from tests.fixtures_core import wait_until
from tests.fixtures_discord import discord_bridge_settings, discord_runtime


@pytest.fixture
async def answer(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any, fake_discord: FakeDiscord
) -> AsyncIterator[Json]:
    """A running bridge and the agent's answer to a mention."""
    settings = discord_bridge_settings(tmp_path, emulator, fake_discord)
    async with discord_runtime(settings, redis_client, emulator):
        asked = await fake_discord.post(
            fake_discord.text_channel["id"], fake_discord.user("asker"), "hi", mention_bot=True
        )
        await wait_until(lambda: bool(fake_discord.bot_messages(asked["id"])))
        yield fake_discord.bot_messages(asked["id"])[0]


def answer_run(emulator: Any) -> str:
    [run] = emulator.state.runs.values()
    return str(run.read.id)


def feedback(emulator: Any) -> list[Any]:
    return list(emulator.state.feedback.values())


async def acknowledged(fake: FakeDiscord, interaction: Json) -> Json:
    record = fake.interactions[interaction["token"]]
    await wait_until(lambda: bool(record.get("followups")))
    return record


def buttons(message: Json) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


async def test_an_answer_carries_thumbs_and_comment_buttons(answer: Json) -> None:
    assert buttons(answer) == [UP, DOWN, COMMENT]


async def test_thumbs_up_then_down_by_one_person_leaves_one_record_thumbs_down_on_the_run(
    answer: Json, fake_discord: FakeDiscord, emulator: Any
) -> None:
    voter = fake_discord.user("voter")

    first = await acknowledged(fake_discord, await fake_discord.click(voter, answer, UP))
    second = await acknowledged(fake_discord, await fake_discord.click(voter, answer, DOWN))

    [record] = feedback(emulator)
    assert record.thumbs == "down"
    assert record.run_id == answer_run(emulator)
    assert record.description == f"by discord:{voter['id']}"
    for ack in (first, second):
        assert ack["responses"][0]["data"]["flags"] & EPHEMERAL
        assert ack["followups"][0]["flags"] & EPHEMERAL or ack["original"]["flags"] & EPHEMERAL
    assert "👍" in first["followups"][0]["content"]


async def test_a_redelivered_click_writes_nothing_twice(
    answer: Json, fake_discord: FakeDiscord, emulator: Any
) -> None:
    voter = fake_discord.user("voter")
    click = await fake_discord.click(voter, answer, UP)
    await acknowledged(fake_discord, click)
    [written] = feedback(emulator)
    callbacks = rf"/interactions/{click['id']}/.+/callback"

    await fake_discord.redeliver(click)
    await fake_discord.wait_until(lambda: len(fake_discord.calls_to("POST", callbacks)) == 2)

    assert [c.status for c in fake_discord.calls_to("POST", callbacks)] == [200, 400]
    assert feedback(emulator) == [written]  # same record, not updated again


async def test_the_comment_button_opens_a_modal_whose_text_is_written_to_the_run(
    answer: Json, fake_discord: FakeDiscord, emulator: Any
) -> None:
    voter = fake_discord.user("voter")
    click = await fake_discord.click(voter, answer, COMMENT)
    record = fake_discord.interactions[click["token"]]
    await wait_until(lambda: bool(record["responses"]))
    [modal] = record["responses"]
    assert modal["type"] == MODAL
    assert modal["data"]["custom_id"] == f"{COMMENT_MODAL}{answer['id']}"

    submitted = await fake_discord.submit_modal(
        voter, answer["channel_id"], modal["data"]["custom_id"], {COMMENT_FIELD: "Too vague."}
    )
    await acknowledged(fake_discord, submitted)

    [written] = feedback(emulator)
    assert written.comment == "Too vague."
    assert written.run_id == answer_run(emulator)


async def test_reactions_on_an_answer_count_and_removing_one_clears_it(
    answer: Json, fake_discord: FakeDiscord, emulator: Any
) -> None:
    voter = fake_discord.user("voter")

    await fake_discord.react(voter, answer, "👎🏽")
    await wait_until(lambda: [f.thumbs for f in feedback(emulator)] == ["down"])
    await fake_discord.react(voter, answer, "👎🏽", add=False)
    await wait_until(lambda: [f.thumbs for f in feedback(emulator)] == [""])

    assert feedback(emulator)[0].run_id == answer_run(emulator)


async def test_reactions_on_other_messages_are_not_feedback(
    answer: Json, fake_discord: FakeDiscord, emulator: Any
) -> None:
    voter = fake_discord.user("voter")
    question = fake_discord.messages[answer["channel_id"]]  # the thread's starter message
    await fake_discord.react(voter, question, "👍")
    await fake_discord.react(voter, answer, "🎉")
    await fake_discord.react(voter, answer, "👍")  # the one that counts, handled after the others

    await wait_until(lambda: bool(feedback(emulator)))
    assert [f.thumbs for f in feedback(emulator)] == ["up"]
