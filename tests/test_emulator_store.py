"""The emulator's SQLite store: a restarted emulator answers every read as before it stopped."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from adapters.console import ConsoleAdapter
from bridge.config import Role, Settings
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, EmulatorState, ThreadedEmulator
from bridge.emulator.store import SqliteStore
from bridge.engage.models import AgentMessage, MessageBasic
from bridge.runtime import BridgeRuntime
from tests.redis_server import RedisServer
from tests.test_console import TypedLines, wait_for_output

HEADERS = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID}


@contextmanager
def served(path: Path) -> Iterator[httpx.Client]:
    store = SqliteStore(path)
    server = ThreadedEmulator(EmulatorState(store=store))
    server.start()
    try:
        with httpx.Client(base_url=f"{server.url}/v1", headers=HEADERS, timeout=10) as client:
            yield client
    finally:
        server.stop()
        store.close()


def ok(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json()


def every_read(client: httpx.Client, cid: str, rid: str, tid: str) -> dict[str, Any]:
    paths = [
        f"/conversations/{cid}",
        f"/conversations/{cid}/messages",
        f"/conversations/{cid}/runs",
        f"/conversations/{cid}/tags",
        f"/conversations/{cid}/feedback",
        "/conversations/me?reversed=false",
        "/conversations/org",
        "/conversations/saved",
        f"/runs/{rid}",
        f"/runs/{rid}/messages",
        f"/runs/{rid}/feedback",
        f"/runs/{rid}/tags",
        "/runs/me",
        "/tags",
        f"/tags/{tid}/conversations",
    ]
    return {path: ok(client.get(path)) for path in paths}


def test_a_restarted_emulator_answers_every_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    with served(path) as client:
        cid = ok(client.post("/conversations", json={"data": {"k": "v"}, "source": "test"}))["id"]
        chat = {"messages": [{"role": "user", "content": "Hi, I am Ada"}]}
        [answer] = ok(client.post(f"/conversations/{cid}/chat?agent=parrot", json=chat))
        rid = answer["run_id"]
        ok(client.post(f"/conversations/{cid}/chat?agent=parrot", json=chat))
        ok(client.patch(f"/conversations/{cid}", json={"data": {"k": "changed"}, "source": None}))
        ok(client.post(f"/conversations/{cid}/saved"))
        tid = ok(client.post("/tags", json={"name": "vip", "description": "d"}))["id"]
        gone = ok(client.post("/tags", json={"name": "gone", "description": ""}))["id"]
        ok(client.post(f"/conversations/{cid}/tags/{tid}"))
        ok(client.post(f"/conversations/{cid}/tags/{gone}"))
        ok(client.post(f"/runs/{rid}/tags/{tid}"))
        ok(client.delete(f"/tags/{gone}"))
        ok(client.post(f"/runs/{rid}/feedback", json={"thumbs": "up", "comment": "good"}))
        ok(client.post(f"/runs/{rid}/feedback", json={"comment": "better"}))
        ok(client.post("/conversations", json={"data": {}, "source": "second"}))
        before = every_read(client, cid, rid, tid)
    with served(path) as client:
        after = every_read(client, cid, rid, tid)
    assert after == before
    assert [m["role"] for m in after[f"/conversations/{cid}/messages"]] == ["user", "agent"] * 2
    assert [t["name"] for t in after[f"/conversations/{cid}"]["tags"]] == ["vip"]
    assert after[f"/runs/{rid}/feedback"][0]["comment"] == "better"


def test_a_change_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    first, second = SqliteStore(path), SqliteStore(path)
    try:
        one, two = EmulatorState(store=first), EmulatorState(store=second)
        user = one.user_for_key(DEFAULT_API_KEY)
        assert user is not None
        record = one.create_conversation(user, data={}, source="chat")
        assert two.conversation(record.id, DEFAULT_ORG_ID) is not None
        two.update_conversation(record.id, data={"status": "human"}, source=None)
        seen = one.conversation(record.id, DEFAULT_ORG_ID)
        assert seen is not None
        assert seen.data == {"status": "human"}
        one.record_run(user, record.id, "parrot")
        assert len(two.runs_for(record.id)) == 1
        assert one.delete_conversation(record.id)
        assert two.conversation(record.id, DEFAULT_ORG_ID) is None
        assert two.runs_for(record.id) == []
        assert two.find_conversations(lambda c: True) == []
    finally:
        first.close()
        second.close()


def test_reset_empties_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    store = SqliteStore(path)
    state = EmulatorState(store=store)
    user = state.user_for_key(DEFAULT_API_KEY)
    assert user is not None
    state.create_conversation(user, data={}, source="x")
    state.reset()
    store.close()
    reopened = SqliteStore(path)
    assert EmulatorState(store=reopened).conversations == {}
    reopened.close()


async def test_a_restarted_bridge_answers_an_old_thread_in_the_same_conversation(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: object,  # flushes what earlier tests left queued
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        http_port=0,
        data_dir=tmp_path,
    )
    roles: set[Role] = {"listeners", "workers"}
    conversation_ids = []
    for start, line, expected in (
        (0, "Hi, my name is Ada", "Nice to meet you, Ada"),
        (1, "When can I take my pension?", "Turn 2. Nice to see you again, Ada."),
    ):
        typed, out = TypedLines(), io.StringIO()
        console = ConsoleAdapter(lines=typed, out=out, session_id="restart")
        console._sequence = start  # the session goes on: its message ids too
        async with BridgeRuntime(
            settings, adapters=[console], roles=roles, emulator_file=tmp_path / "emu.sqlite3"
        ) as rt:
            typed.type(line)
            answer = await wait_for_output(out, expected)
            record = await rt.bridge.threads.get(console.thread)
            assert record is not None
            conversation_ids.append(record.conversation_id)
            typed.close()
        assert expected in answer
        assert "Sorry" not in out.getvalue()
    assert conversation_ids[0] == conversation_ids[1]


def test_runs_left_without_an_answer_are_dropped_for_good_and_answered_ones_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "emulator.sqlite3"
    store = SqliteStore(path)
    state = EmulatorState(store=store)
    user = state.user_for_key(DEFAULT_API_KEY)
    assert user is not None
    cid = state.create_conversation(user, data={}, source="x").id
    answered, cut_off = (state.record_run(user, cid, "parrot") for _ in range(2))
    said = [MessageBasic(role="user", content="hi")]
    state.append_messages(cid, said, run_id=answered.id, user_id=user.user_id)
    state.append_messages(cid, [AgentMessage(content="hello")], run_id=answered.id, user_id="a")
    state.append_messages(cid, said, run_id=cut_off.id, user_id=user.user_id)  # died here

    assert state.drop_unanswered_runs() == 1
    store.close()
    reopened = SqliteStore(path)
    runs = EmulatorState(store=reopened).runs_for(cid)
    reopened.close()
    assert [r.id for r in runs] == [answered.id]
