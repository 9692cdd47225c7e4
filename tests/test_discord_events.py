"""`to_event` on recorded MESSAGE_CREATE payloads: pure, no network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.events import BotFacts, ChannelFacts, ChannelKind, to_event
from bridge.models import Attachment, Origin, ThreadKey

PAYLOADS = Path(__file__).parent / "payloads" / "discord"
BOT = BotFacts(user_id="1100000000000000001", staff_role_ids=frozenset({"1400000000000000001"}))
GUILD, TEXT, FORUM = "1200000000000000001", "1300000000000000001", "1300000000000000002"
THREAD, FORUM_POST, DM = "1600000000000000001", "1600000000000000002", "1700000000000000001"
IN_TEXT = ChannelFacts(ChannelKind.TEXT)
IN_THREAD = ChannelFacts(ChannelKind.THREAD, parent_id=TEXT)
IN_FORUM_POST = ChannelFacts(ChannelKind.THREAD, parent_id=FORUM)
IN_DM = ChannelFacts(ChannelKind.DM)


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return loaded


def test_a_mention_in_a_text_channel_is_keyed_to_the_thread_its_message_will_start() -> None:
    message = to_event(payload("mention_in_text_channel"), IN_TEXT, BOT)

    assert message is not None
    msg_id = "1800000000000000001"
    assert message.thread == ThreadKey("discord", GUILD, TEXT, msg_id)
    assert message.message_id == msg_id
    assert message.ticket_id == msg_id
    assert message.text == "what is my pension worth?"
    assert message.mentions_bot
    assert not message.is_dm
    assert message.user_id == "1500000000000000001"
    assert message.user_name == "Alice"
    assert message.origin is Origin.USER
    assert message.permalink == f"https://discord.com/channels/{GUILD}/{TEXT}/{msg_id}"
    assert message.sent_at.year == 2026


def test_a_message_in_a_thread_continues_that_thread_without_a_mention() -> None:
    message = to_event(payload("reply_in_bot_thread"), IN_THREAD, BOT)

    assert message is not None
    assert message.thread == ThreadKey("discord", GUILD, TEXT, THREAD)
    assert message.ticket_id == THREAD
    assert not message.mentions_bot


def test_a_forum_posts_first_message_is_keyed_to_the_post_under_its_forum() -> None:
    message = to_event(payload("forum_post_first_message"), IN_FORUM_POST, BOT)

    assert message is not None
    assert message.thread == ThreadKey("discord", GUILD, FORUM, FORUM_POST)
    assert message.attachments == (
        Attachment(
            name="statement.pdf",
            url="https://cdn.discordapp.com/attachments/1/2/statement.pdf",
            mime_type="application/pdf",
            size=48213,
        ),
    )


@pytest.mark.parametrize("name", ["direct_message", "direct_message_reset"])
def test_every_direct_message_belongs_to_the_one_conversation_of_its_dm_channel(name: str) -> None:
    message = to_event(payload(name), IN_DM, BOT)

    assert message is not None
    assert message.thread == ThreadKey("discord", "@dm", DM, DM)
    assert message.is_dm
    assert message.permalink is not None
    assert message.permalink.startswith("https://discord.com/channels/@me/")


def test_the_dm_key_does_not_depend_on_what_the_cache_knows() -> None:
    message = to_event(payload("direct_message"), ChannelFacts(ChannelKind.OTHER), BOT)

    assert message is not None
    assert message.thread == ThreadKey("discord", "@dm", DM, DM)


def test_a_staff_role_makes_the_author_staff() -> None:
    message = to_event(payload("staff_reply_in_thread"), IN_THREAD, BOT)

    assert message is not None
    assert message.origin is Origin.STAFF


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("own_message", IN_THREAD),
        ("other_bot", IN_THREAD),
        ("webhook_message", IN_THREAD),
        ("thread_created_system", IN_TEXT),
        ("pin_system", IN_THREAD),
        ("edited_message", IN_THREAD),
        ("plain_channel_message", IN_TEXT),
        ("mention_in_text_channel", ChannelFacts(ChannelKind.OTHER)),
    ],
)
def test_messages_the_bot_must_not_see_are_ignored(name: str, channel: ChannelFacts) -> None:
    assert to_event(payload(name), channel, BOT) is None


def test_other_bots_are_heard_when_allowed_but_never_the_bot_itself() -> None:
    allowing = BotFacts(user_id=BOT.user_id, allow_bots=True)

    other = to_event(payload("other_bot"), IN_THREAD, allowing)
    own = to_event(payload("own_message"), IN_THREAD, allowing)

    assert other is not None
    assert other.origin is Origin.BOT
    assert own is None


def test_an_auto_reply_channel_opens_a_conversation_without_a_mention() -> None:
    auto = BotFacts(user_id=BOT.user_id, auto_reply_channels=frozenset({TEXT}))

    message = to_event(payload("plain_channel_message"), IN_TEXT, auto)

    assert message is not None
    assert message.thread == ThreadKey("discord", GUILD, TEXT, "1800000000000000011")
    assert not message.mentions_bot


def test_a_reply_to_the_bots_message_in_a_channel_addresses_the_bot() -> None:
    message = to_event(payload("reply_to_bot_in_channel"), IN_TEXT, BOT)

    assert message is not None
    assert message.mentions_bot
    assert message.thread.thread == "1800000000000000012"


def test_a_mention_of_the_bots_managed_role_is_a_mention_of_the_bot() -> None:
    raw = payload("role_mention_in_text_channel")
    with_role = ChannelFacts(ChannelKind.TEXT, bot_role_id="1400000000000000009")
    other_role = ChannelFacts(ChannelKind.TEXT, bot_role_id="1400000000000000008")

    message = to_event(raw, with_role, BOT)

    assert message is not None
    assert message.mentions_bot
    assert message.text == "what is my pension worth?"
    assert to_event(raw, other_role, BOT) is None  # some other role: not addressed to the bot
