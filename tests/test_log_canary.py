"""At DEBUG, without log_content, a canary text sent through every adapter is in no log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.console import ConsoleAdapter
from bridge.config import Role, Settings
from bridge.logs import MANAGED_LOGGERS, configure_logging
from bridge.runtime import BridgeRuntime
from tests.fakes.desk import FakeDesk
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, slash_command, user_message
from tests.fixtures_core import wait_until
from tests.fixtures_desk import desk_event, signed
from tests.fixtures_slack import slack_bridge
from tests.redis_server import RedisServer
from tests.test_console import TypedLines, wait_for_output

CANARY = "canary-7f3a9c"


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """The bridge's own log configuration at DEBUG (log_content off), captured; restored after."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in MANAGED_LOGGERS)]
    handlers, levels = list(loggers[0].handlers), [lg.level for lg in loggers]
    buffer = io.StringIO()
    configure_logging(Settings(_env_file=None, log_level="DEBUG"), stream=buffer)  # type: ignore[call-arg]
    yield buffer
    loggers[0].handlers[:] = handlers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def assert_no_canary(logs: io.StringIO) -> None:
    text = logs.getvalue()
    assert " debug bridge." in text  # DEBUG logging was on and captured
    leaks = [line for line in text.splitlines() if CANARY in line]
    assert not leaks, leaks[:3]


async def test_slack_event_slash_command_and_answer_leave_no_content_in_debug_logs(
    debug_logs: io.StringIO, fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    async with slack_bridge(fake_slack, emulator, redis_client) as b:
        event = user_message(b.slack, text=f"<@{b.slack.bot_user_id}> {CANARY} one")
        assert (await b.events.send(envelope(b.slack, event))).status == 200
        [reply] = await b.wait_replies("C0001", event["ts"])
        assert CANARY in reply["text"]
        await b.events.send_command(slash_command(b.slack, f"ask {CANARY} two"))
        await b.slack.wait_for(
            lambda: sum(CANARY in str(m.get("text")) for m in b.slack.posted()) >= 3
        )
    assert_no_canary(debug_logs)


async def test_discord_message_and_answer_leave_no_content_in_debug_logs(
    debug_logs: io.StringIO, discord_bridge: BridgeRuntime, fake_discord: FakeDiscord
) -> None:
    user = fake_discord.user("alice")
    posted = await fake_discord.post(
        fake_discord.text_channel["id"], user, CANARY, mention_bot=True
    )
    await wait_until(lambda: len(fake_discord.bot_messages(posted["id"])) >= 1)
    assert CANARY in fake_discord.bot_messages(posted["id"])[0]["content"]
    assert_no_canary(debug_logs)


async def test_desk_ticket_and_callback_leave_no_content_in_debug_logs(
    debug_logs: io.StringIO, desk_bridge: BridgeRuntime, fake_desk: FakeDesk
) -> None:
    raw, headers = signed(desk_event("ticket.created", ticket_id="T-L", body=CANARY))
    async with httpx.AsyncClient(base_url=desk_bridge.http_url or "") as http:
        assert (await http.post("/desk/webhook", content=raw, headers=headers)).status_code == 200
    [callback] = await fake_desk.wait_for_callbacks(1)
    assert CANARY in callback["text"]
    assert_no_canary(debug_logs)


async def test_playground_message_and_answer_leave_no_content_in_debug_logs(
    debug_logs: io.StringIO, web_bridge: BridgeRuntime
) -> None:
    async with httpx.AsyncClient(base_url=web_bridge.http_url or "") as http:
        created = await http.post("/playground/api/threads", json={})
        base = f"/playground/api/threads/{created.json()['id']}"
        body = json.dumps({"text": CANARY, "client_id": uuid.uuid4().hex})
        await http.post(
            f"{base}/messages", content=body, headers={"content-type": "application/json"}
        )

        async def answered() -> bool:
            entries = (await http.get(base)).json()["entries"]
            return any(e["role"] == "agent" and CANARY in e["text"] for e in entries)

        await wait_until(answered)
    assert_no_canary(debug_logs)


async def test_console_chat_leaves_no_content_in_debug_logs(
    debug_logs: io.StringIO, tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        http_port=0,
        data_dir=tmp_path,
        log_level="DEBUG",
    )
    typed, out = TypedLines(), io.StringIO()
    console = ConsoleAdapter(lines=typed, out=out, session_id="canary")
    roles: set[Role] = {"listeners", "workers"}
    async with BridgeRuntime(settings, adapters=[console], roles=roles) as rt:
        typed.type(f"my name is {CANARY}")
        await wait_for_output(out, "pensions-questions-latest: ")
        typed.close()
        await asyncio.wait_for(rt.wait(), 10)
    assert_no_canary(debug_logs)
