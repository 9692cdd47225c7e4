"""Text sanitised at the edge: no character an adapter accepts can break a thread later."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from adapters.console import ConsoleAdapter
from bridge.config import Role, Settings
from bridge.models import InboundMessage, ThreadKey
from bridge.runtime import BridgeRuntime
from bridge.sanitise import REPLACEMENT, clean
from tests.fakes.desk import FakeDesk
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_desk import desk_event, signed
from tests.fixtures_slack import slack_bridge
from tests.redis_server import RedisServer
from tests.test_console import TypedLines, wait_for_output

LONE = "\ud800"


def test_unpaired_surrogates_and_control_characters_are_replaced() -> None:
    r = REPLACEMENT
    assert clean(f"a{LONE}b\x00c\x1bd\x7fe\x85") == f"a{r}b{r}c{r}d{r}e{r}"
    clean(f"x{LONE}\udfff").encode("utf-8")  # never raises


def test_ordinary_text_tabs_newlines_and_a_split_surrogate_pair_survive() -> None:
    text = "Grüße\tà tous\r\nline 2 😀"
    assert clean(text) is text
    assert clean("\ud83d\ude00") == "😀"


def test_every_inbound_message_is_clean_whoever_builds_it() -> None:
    message = InboundMessage(
        thread=ThreadKey("web", "playground", "local", f"t{LONE}"),
        message_id=f"m{LONE}",
        user_id="u\x00",
        text=f"hi {LONE}",
        sent_at=datetime.now(UTC),
        user_name=f"Ann{LONE}",
        command=f"agent x{LONE}",
    )
    for value in (
        str(message.thread),
        message.message_id,
        message.user_id,
        message.text,
        message.user_name or "",
        message.command or "",
    ):
        value.encode("utf-8")
        assert REPLACEMENT in value


async def test_a_lone_surrogate_in_a_signed_slack_event_is_answered(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        event = user_message(b.slack, text=f"<@{b.slack.bot_user_id}> broken {LONE} text")
        assert (await b.events.send(envelope(b.slack, event))).status == 200
        [reply] = await b.wait_replies("C0001", event["ts"])
        assert reply["text"] == f"You said: broken {REPLACEMENT} text"


async def test_a_lone_surrogate_in_a_discord_message_is_answered(
    discord_bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    user = fake_discord.user("alice")
    posted = await fake_discord.post(
        fake_discord.text_channel["id"], user, f"broken {LONE}\x00 text", mention_bot=True
    )
    await wait_until(lambda: len(fake_discord.bot_messages(posted["id"])) >= 1)
    [answer] = [m["content"] for m in fake_discord.bot_messages(posted["id"])]
    assert answer == f"You said: broken {REPLACEMENT}{REPLACEMENT} text"


async def test_a_desk_comment_with_a_lone_surrogate_is_422_and_control_characters_are_replaced(
    desk_bridge: BridgeRuntime, fake_desk: FakeDesk
) -> None:
    raw = json.dumps(desk_event("ticket.created", ticket_id="T-S", body=f"broken {LONE}")).encode()
    assert b"\\ud800" in raw
    async with httpx.AsyncClient(base_url=desk_bridge.http_url or "") as http:
        # The desk's JSON parser (pydantic) refuses the escape itself: a clear 4xx.
        response = await http.post("/desk/webhook", content=raw, headers=signed(raw)[1])
        assert response.status_code == 422, response.text
        event = desk_event("ticket.created", ticket_id="T-C", body="bell \x07 and nul \x00")
        raw, headers = signed(event)
        response = await http.post("/desk/webhook", content=raw, headers=headers)
        assert response.status_code == 200, response.text
    [callback] = await fake_desk.wait_for_callbacks(1)
    assert callback["ticket_id"] == "T-C"
    assert callback["text"] == f"You said: bell {REPLACEMENT} and nul {REPLACEMENT}"


async def test_a_lone_surrogate_in_the_playground_keeps_the_thread_readable_and_answered(
    web_bridge: BridgeRuntime,
) -> None:
    async with httpx.AsyncClient(base_url=web_bridge.http_url or "") as http:
        created = await http.post("/playground/api/threads", json={})
        base = f"/playground/api/threads/{created.json()['id']}"
        raw = json.dumps({"text": f"broken {LONE} text", "client_id": uuid.uuid4().hex})
        response = await http.post(
            f"{base}/messages", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        state: dict[str, Any] = {}

        async def answered() -> bool:
            poll = await http.get(base)
            assert poll.status_code == 200, poll.text
            state.update(poll.json())
            return any(e["role"] == "agent" for e in state["entries"])

        await wait_until(answered)
        texts = [e["text"] for e in state["entries"]]
        assert f"broken {REPLACEMENT} text" in texts
        assert f"You said: broken {REPLACEMENT} text" in texts


async def test_undecodable_console_input_is_answered(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        http_port=0,
        data_dir=tmp_path,
    )
    typed, out = TypedLines(), io.StringIO()
    console = ConsoleAdapter(lines=typed, out=out, session_id="surrogate")
    roles: set[Role] = {"listeners", "workers"}
    async with BridgeRuntime(settings, adapters=[console], roles=roles) as rt:
        # stdin decodes bytes that are not UTF-8 with surrogateescape: lone surrogates.
        typed.type("my name is Ad\udce9")
        answer = await wait_for_output(out, "pensions-questions-latest: ")
        assert "Ad" in answer
        typed.close()
        await asyncio.wait_for(rt.wait(), 10)
        [conversation] = await rt.engage.search_own_conversations()
        messages = await rt.engage.get_messages(conversation.id)
        assert f"my name is Ad{REPLACEMENT}" in [m.content for m in messages]
