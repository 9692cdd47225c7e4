"""Agent turns against the emulator: streaming, info/status, failures, dead letters, lifecycle."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis.exceptions

from bridge.config import FileConfig, Routing
from bridge.engage.client import EngageClient
from bridge.models import Origin, ReplyKind, ThreadKey
from tests.fixtures_core import (
    NewCore,
    core_settings,
    message,
    running,
    thread_key,
    until_sent,
    wait_until,
)


def settings_for(agent: str, **overrides: Any) -> Any:
    return core_settings(file=FileConfig(routing=Routing(default_agent=agent)), **overrides)


def history(emulator: Any, cid: str) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in emulator.state.messages(cid)]


def runs(emulator: Any) -> int:
    return len(emulator.state.runs)


async def test_info_messages_never_reach_users(emulator: Any, new_core: NewCore) -> None:
    bridge, adapter = new_core(settings_for("inspector"))
    await bridge.submit(message(text="look"))
    await until_sent(bridge, adapter)
    assert adapter.texts() == ["Inspected: look"]
    assert not any("internal" in r.text for r in adapter.sent)


async def test_status_messages_go_to_set_status_and_are_cleared(
    emulator: Any, new_core: NewCore
) -> None:
    settings = settings_for("pensions-questions-latest")
    bridge, adapter = new_core(settings)
    await bridge.submit(message(text="When can I retire?", user_name="Ada"))
    await until_sent(bridge, adapter)
    statuses = [s for _, s in adapter.statuses]
    assert statuses == ["Thinking…", "Reading your question…", "Looking up pension rules…", None]
    [reply] = adapter.sent
    assert reply.kind is ReplyKind.AGENT
    assert reply.agent == "pensions-questions-latest"
    assert reply.idempotency_key
    assert reply.conversation_id
    [user] = [m for m in emulator.state.messages(reply.conversation_id) if m.role == "user"]
    assert user.name == "Ada"


async def test_agent_outage_retries_then_apologises_dead_letters_and_replays(
    emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core()
    emulator.faults.scope = "chat"
    emulator.faults.status = 503
    emulator.faults.fail_next = 100
    await bridge.submit(message(text="are you there?"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
        [apology] = adapter.sent
        assert apology.kind is ReplyKind.NOTICE
        assert "Sorry" in apology.text
        [letter] = await bridge.dead_letters.list()
        assert letter.messages[0].text == "are you there?"
        assert "503" in letter.error
        retries = bridge.metrics.agent_retries._value.get()
        assert retries >= bridge.settings.agent_attempts - 1
        emulator.faults.reset()
        assert await bridge.dead_letters.replay(letter.turn_id) is not None
        await wait_until(lambda: len(adapter.sent) == 2)
    assert adapter.sent[1].text == "You said: are you there?"
    assert await bridge.dead_letters.list() == []
    cid = adapter.sent[1].conversation_id
    assert cid is not None
    assert history(emulator, cid).count(("user", "are you there?")) == 1


async def test_permanent_agent_errors_dead_letter_at_once(emulator: Any, new_core: NewCore) -> None:
    bridge, adapter = new_core(settings_for("no-such-agent"))
    await bridge.submit(message(text="hello"))
    async with running(bridge):
        await wait_until(lambda: len(adapter.sent) == 1)
        assert len(await bridge.dead_letters.list()) == 1
    assert bridge.metrics.agent_retries._value.get() == 0


async def test_a_lost_chat_response_is_reconciled_not_resent(
    emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core()
    emulator.faults.scope = "chat"
    emulator.faults.lose_response_next = 1
    await bridge.submit(message(text="only once"))
    await until_sent(bridge, adapter)
    [reply] = adapter.sent
    assert reply.text == "You said: only once"
    assert reply.conversation_id is not None
    assert history(emulator, reply.conversation_id).count(("user", "only once")) == 1


async def test_lifecycle_bot_human_resolved_reopened_without_agent_calls_while_human(
    emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core()
    thread = thread_key("life")

    async def say(text: str, **kw: Any) -> None:
        result = await bridge.submit(message(thread, text, **kw))
        assert result.extra["outcome"] == "accepted", result

    async with running(bridge):
        await say("first question")
        await wait_until(lambda: len(adapter.sent) == 1)
        record = await bridge.threads.get(thread)
        assert record is not None
        cid = record.conversation_id
        data = lambda: emulator.state.conversations[cid].data  # noqa: E731
        runs_before = runs(emulator)

        await say("I'll take this one", user_id="S1", origin=Origin.STAFF, is_dm=False)
        await wait_until(lambda: data()["status"] == "human")
        assert data()["assignee"] == "S1"
        assert data()["status_changed_at"]
        assert data()["ticket_id"] == "tlife"
        assert emulator.state.conversations[cid].source == "console"
        await say("thanks, waiting for a person")
        await wait_until(lambda: ("user", "thanks, waiting for a person") in history(emulator, cid))
        assert runs(emulator) == runs_before
        assert ("user", "I'll take this one") in history(emulator, cid)
        staff_names = [m.name for m in emulator.state.messages(cid) if m.content.startswith("I'll")]
        assert staff_names == ["staff:S1"]

        await say("resolve", command="resolve")
        await wait_until(lambda: data()["status"] == "resolved")
        await say("one more thing")
        await wait_until(lambda: adapter.texts()[-1].endswith("one more thing"))
    assert data()["status"] == "bot"
    assert runs(emulator) == runs_before + 1
    notices = [r.text for r in adapter.sent if r.kind is ReplyKind.NOTICE]
    assert len(notices) == 3
    assert "member of the team" in notices[0]
    assert "resolved" in notices[1]
    assert "open again" in notices[2]


async def test_handoff_records_the_staff_assignee_but_never_the_customer_asking(
    emulator: Any, new_core: NewCore
) -> None:
    bridge, adapter = new_core()
    asked, assigned = thread_key("asked"), thread_key("assigned")
    async with running(bridge):
        for thread in (asked, assigned):
            await bridge.submit(message(thread, "first question"))
        await wait_until(lambda: len(adapter.sent) == 2)
        await bridge.submit(message(asked, "handoff", user_id="U1"))
        await bridge.submit(
            message(assigned, "", user_id="S9", origin=Origin.STAFF, command="handoff")
        )
        cids = {
            t: r.conversation_id for t in (asked, assigned) if (r := await bridge.threads.get(t))
        }

        def data(thread: ThreadKey) -> dict[str, Any]:
            return dict(emulator.state.conversations[cids[thread]].data)

        await wait_until(lambda: all(data(t).get("status") == "human" for t in (asked, assigned)))
    assert data(asked)["assignee"] is None
    assert data(assigned)["assignee"] == "S9"


async def test_status_agent_and_reset_commands(emulator: Any, new_core: NewCore) -> None:
    bridge, adapter = new_core()
    thread = thread_key("cmd")
    async with running(bridge):
        await bridge.submit(message(thread, "hi"))
        await wait_until(lambda: len(adapter.sent) == 1)
        first = await bridge.threads.get(thread)
        assert first is not None
        await bridge.submit(
            message(thread, "<@BOT> agent inspector", is_dm=False, mentions_bot=True)
        )
        await wait_until(lambda: len(adapter.sent) == 2)
        await bridge.submit(message(thread, "status"))
        await wait_until(lambda: len(adapter.sent) == 3)
        assert first.conversation_id in adapter.sent[2].text
        assert "inspector" in adapter.sent[2].text
        await bridge.submit(message(thread, "agent nobody"))
        await wait_until(lambda: len(adapter.sent) == 4)
        assert "no agent called nobody" in adapter.sent[3].text
        await bridge.submit(message(thread, "again"))
        await wait_until(lambda: len(adapter.sent) == 5)
        assert adapter.sent[4].text == "Inspected: again"
        await bridge.submit(message(thread, "reset"))
        await wait_until(lambda: len(adapter.sent) == 6)
        await bridge.submit(message(thread, "fresh start"))
        await wait_until(lambda: len(adapter.sent) == 7)
    second = await bridge.threads.get(thread)
    assert second is not None
    assert second.conversation_id != first.conversation_id
    assert adapter.sent[6].text == "You said: fresh start"


async def test_an_answer_names_the_run_that_produced_it(
    emulator: Any, engage_client: EngageClient, new_core: NewCore
) -> None:
    bridge, adapter = new_core(settings_for("parrot"))
    await bridge.submit(message(text="which run?"))
    await until_sent(bridge, adapter)
    [reply] = adapter.sent
    [run] = await engage_client.get_conversation_runs(reply.conversation_id or "")
    assert reply.run_id == run.id


async def test_a_failed_chat_wins_over_a_failed_record_write_which_is_logged(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    new_core: NewCore,
) -> None:
    """The new record's write runs alongside the chat: when both fail, the turn ends on the
    chat's own error (apology, dead letter) and the write's failure is logged, not raised in
    its place."""
    bridge, adapter = new_core(settings_for("no-such-agent"))
    put = bridge.threads.put
    failed: list[Any] = []

    async def failing_put(record: Any, *, unclaim: bool = False) -> Any:
        if not failed:  # the first write: the new record's, after the create
            failed.append(record)
            raise redis.exceptions.ConnectionError("redis went away")
        return await put(record, unclaim=unclaim)

    monkeypatch.setattr(bridge.threads, "put", failing_put)
    await bridge.submit(message(text="hello"))
    with caplog.at_level(logging.WARNING):
        async with running(bridge):
            await wait_until(lambda: len(adapter.sent) == 1)
            [letter] = await bridge.dead_letters.list()
    [apology] = adapter.sent
    assert apology.kind is ReplyKind.NOTICE
    assert "404" in letter.error or "no-such-agent" in letter.error
    assert "ConnectionError" not in letter.error
    assert failed
    # One attempt: the turn was not crashed by the write and taken up again.
    assert not [r for r in caplog.records if "turn attempt" in r.getMessage()]
    [line] = [r for r in caplog.records if r.name == "bridge.actions"]
    assert line.levelno == logging.ERROR
    assert line.getMessage() == "thread record not written: ConnectionError"
