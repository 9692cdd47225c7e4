"""Files shared with the bot: text-like ones reach the agent (capped), others are described."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from adapters.slack.files import FileLimits, FileReader
from bridge.files import is_text_like
from bridge.models import Attachment, InboundMessage, ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, user_message
from tests.fixtures_slack import SlackBridge, slack_bridge

SOURCE = "".join(f"def step_{n}(x):\n    return x * {n}  # {'#' * 20}\n" for n in range(340))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def message_with(*files: dict[str, Any]) -> InboundMessage:
    attachments = tuple(
        Attachment(f["name"], f["url_private"], f["mimetype"], f["size"]) for f in files
    )
    return InboundMessage(
        thread=ThreadKey("slack", "T0001", "C0001", "1.1"),
        message_id="C0001:1.2",
        user_id="U0001",
        text="please look",
        sent_at=datetime.now(UTC),
        attachments=attachments,
    )


def test_text_like_files_are_recognised_by_type_or_extension() -> None:
    assert is_text_like(Attachment("a.py", "u", "application/octet-stream", 1))
    assert is_text_like(Attachment("data", "u", "application/json", 1))
    assert is_text_like(Attachment("notes", "u", "text/markdown", 1))
    assert not is_text_like(Attachment("statement.pdf", "u", "application/pdf", 1))


async def test_a_text_file_is_inlined_with_its_name(
    fake_slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    file = fake_slack.files.add("steps.py", content=SOURCE.encode(), mimetype="text/x-python")
    got = await FileReader().with_files(message_with(file), session, fake_slack.bot_token)
    assert got.text.startswith("please look\n\n--- attachment: steps.py (text/x-python, ")
    assert SOURCE in got.text
    assert got.attachments == ()


async def test_large_binary_and_unauthorised_files_are_described_not_inlined(
    fake_slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    huge = fake_slack.files.add("dump.log", size=50 * 1024 * 1024)
    pdf = fake_slack.files.add("a.pdf", content=b"%PDF-1.7", mimetype="application/pdf")
    note = fake_slack.files.add("note.txt", content=b"secret")
    got = await FileReader().with_files(message_with(huge, pdf, note), session, "xoxb-wrong")
    assert "[attachment not read: dump.log (text/plain, 50.0 MB): larger than the" in got.text
    assert "[attachment not read: a.pdf (application/pdf, 8 B): not a text file]" in got.text
    assert "[attachment not read: note.txt (text/plain, 6 B): download refused" in got.text
    assert "secret" not in got.text
    assert fake_slack.files.downloads == []  # the sign-in page is not the file


async def test_a_file_larger_than_it_claimed_is_cut_off_at_the_cap(
    fake_slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    file = fake_slack.files.add("grows.txt", content=b"x" * 5_000)
    file["size"] = 10  # Slack's event said 10 bytes
    reader = FileReader(FileLimits(max_bytes=1_000))
    got = await reader.with_files(message_with(file), session, fake_slack.bot_token)
    assert "larger than the 1000 B limit" in got.text


@pytest.mark.slow
async def test_a_shared_source_file_reaches_the_agent_and_a_50_mb_file_is_not_downloaded(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    py = fake_slack.files.add("steps.py", content=SOURCE.encode(), mimetype="text/x-python")
    assert 19_000 < py["size"] < 21_000
    big = fake_slack.files.add("export.csv", size=50 * 1024 * 1024, mimetype="text/csv")
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        shared = dm_with_files(b, [py, big])
        assert (await b.events.send(envelope(b.slack, shared))).status == 200
        await b.wait_replies("D0001", shared["ts"])
        conversation = await b.conversation_of(ThreadKey("slack", "T0001", "D0001", shared["ts"]))
    [user] = [m for m in emulator.state.messages(conversation.id) if m.role == "user"]
    assert SOURCE in user.content
    assert "[attachment not read: export.csv (text/csv, 50.0 MB): larger than" in user.content
    assert fake_slack.files.downloads == [py["id"]]


def dm_with_files(b: SlackBridge, files: list[dict[str, Any]]) -> dict[str, Any]:
    event = user_message(b.slack, channel="D0001", channel_type="im", text="check these")
    event.update(subtype="file_share", files=files)
    return event


@pytest.mark.slow
async def test_files_in_chatter_not_for_the_bot_are_not_downloaded(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    note = fake_slack.files.add("note.txt", content=b"lunch at noon")
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        chatter = user_message(b.slack, channel="C0001", text="fyi")
        chatter.update(subtype="file_share", files=[note])
        assert (await b.events.send(envelope(b.slack, chatter))).status == 200
    assert fake_slack.files.downloads == []
