"""The `engage-bridge` command: zero-config `run` as a real process, chat, check, operator verbs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.console import ConsoleAdapter
from bridge.cli import build_parser, chat_command, main
from bridge.config import Role, Settings
from bridge.logs import MANAGED_LOGGERS
from bridge.runtime import BridgeRuntime
from tests.fixtures_emulator import Emulator
from tests.redis_server import RedisServer

ENGAGE_BRIDGE = str(Path(sys.executable).parent / "engage-bridge")
_PREFIXES = ("ENGAGE_", "SLACK_", "DISCORD_")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No engage-bridge configuration in the environment; a temp dir as cwd and data dir."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # configure_logging() changes the root logger and the quiet ones: leave them as found.
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in MANAGED_LOGGERS)]
    handlers, levels = list(loggers[0].handlers), [lg.level for lg in loggers]
    yield tmp_path
    loggers[0].handlers[:] = handlers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


# Parsing


def test_roles_are_parsed_as_a_comma_separated_subset() -> None:
    args = build_parser().parse_args(["run", "--roles", "http, workers"])
    assert args.roles == {"http", "workers"}


def test_unknown_roles_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "--roles", "http,cooks"])
    assert exit_info.value.code == 2
    assert "subset of http,listeners,workers" in capsys.readouterr().err


def test_every_documented_command_parses() -> None:
    parser = build_parser()
    for argv in (
        ["run"],
        ["chat"],
        ["emulator", "--host", "0.0.0.0", "--port", "9000"],
        ["check"],
        ["threads", "list"],
        ["threads", "show", "slack:T:C:1"],
        ["threads", "forget", "slack:T:C:1"],
        ["history", "slack:T:C:1"],
        ["dead-letters", "list"],
        ["dead-letters", "replay", "abc"],
        ["dead-letters", "replay", "--all"],
        ["threads", "list", "--json"],
        ["threads"],
        ["dead-letters"],
        ["history", "--json", "slack:T:C:1"],
        ["rebuild-map"],
    ):
        assert parser.parse_args(argv).command == argv[0]


# Operator verbs, in-process, on embedded defaults


def test_threads_list_on_a_fresh_data_dir_is_empty(clean_env: Path) -> None:
    code, out = run_cli("threads", "list")
    assert code == 0
    assert out == "thread_key\tconversation_id\tagent\tstatus\tupdated\n"
    assert (clean_env / ".engage-bridge" / "appendonly.aof").exists()


def test_errors_are_one_line_without_traceback(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli("history", "slack:T1:C1:1.2")
    err = capsys.readouterr().err
    assert code == 1
    assert "engage-bridge: error: no conversation is mapped to thread slack:T1:C1:1.2" in err
    assert "Traceback" not in err


def test_a_malformed_thread_key_is_explained(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli("threads", "show", "not-a-key")
    assert code == 1
    assert "expected platform:workspace:channel:thread" in capsys.readouterr().err


def test_debug_shows_the_traceback(clean_env: Path) -> None:
    with pytest.raises(Exception, match="no conversation is mapped"):
        main(["--debug", "history", "slack:T1:C1:1.2"], out=io.StringIO())


def test_invalid_configuration_is_one_line(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_HTTP_PORT", "eighty")
    code, _ = run_cli("threads", "list")
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("engage-bridge: error: invalid configuration")


def test_dead_letters_list_and_unknown_replay(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("dead-letters", "list") == (
        0,
        "turn_id\tthread_key\tfailed_at\tmessages\terror\n",
    )
    code, _ = run_cli("dead-letters", "replay", "nope")
    assert code == 1
    assert "no dead letter nope" in capsys.readouterr().err


def test_check_passes_on_zero_configuration(clean_env: Path) -> None:
    code, out = run_cli("check")
    assert code == 0, out
    assert "OK   redis: embedded answers" in out
    assert "OK   engage smarter: built-in emulator accepts the credentials" in out
    assert "OK   agent pensions-questions-latest: active" in out
    assert "OK   platform web: credentials accepted" in out
    assert out.strip().endswith("all checks passed")


def test_check_names_each_failure(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("ENGAGE_SMARTER_API_URL", emulator.url)
    monkeypatch.setenv("ENGAGE_SMARTER_API_KEY", "wrong-key")
    monkeypatch.setenv("ENGAGE_SMARTER_ORG_ID", emulator.org_id)
    code, out = run_cli("check")
    assert code == 1
    assert "FAIL redis: Redis did not answer" in out
    assert "(check ENGAGE_BRIDGE_REDIS_URL" in out
    assert (
        "FAIL engage smarter: the API key or org id was not accepted "
        "(check ENGAGE_SMARTER_API_KEY and ENGAGE_SMARTER_ORG_ID)"
    ) in out
    assert "SKIP agent pensions-questions-latest: needs Engage Smarter" in out
    assert "SKIP platform web: needs Redis" in out
    assert out.count("FAIL") == 2, out
    assert out.strip().endswith("2 check(s) failed")


def test_check_fails_once_per_setting_nobody_reads_naming_it_not_its_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_WORKER_CONCURENCY", "secret-looking-value-1")
    (clean_env / ".env").write_text("ENGAGE_BRIDGE_REDIS_ULR=redis://secret-looking-value-2\n")
    code, out = run_cli("check")
    assert code == 1
    assert (
        "FAIL configuration: ENGAGE_BRIDGE_REDIS_ULR is not a setting of engage-bridge and is "
        "ignored (did you mean ENGAGE_BRIDGE_REDIS_URL?)"
    ) in out
    assert (
        "FAIL configuration: ENGAGE_BRIDGE_WORKER_CONCURENCY is not a setting of engage-bridge "
        "and is ignored (did you mean ENGAGE_BRIDGE_WORKER_CONCURRENCY?)"
    ) in out
    assert out.count("FAIL") == 2, out
    assert "secret-looking-value" not in out


def test_other_commands_log_one_warning_per_setting_nobody_reads(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_LOGLEVEL", "secret-looking-value")
    monkeypatch.setenv("ENGAGE_BRIDGE_HTTP_PORT", "8099")  # read: not reported
    monkeypatch.setenv("engage_bridge_log_json", "false")  # names are not case-sensitive
    code, _ = run_cli("threads", "list")
    err = capsys.readouterr().err
    assert code == 0
    [line] = [line for line in err.splitlines() if "is not a setting" in line]
    assert "ENGAGE_BRIDGE_LOGLEVEL is not a setting of engage-bridge" in line
    assert "did you mean ENGAGE_BRIDGE_LOG_LEVEL?" in line
    assert "secret-looking-value" not in err


async def test_history_threads_and_forget_after_a_console_conversation(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    redis_server: RedisServer,
    redis_client: object,  # flushes the database for this test
) -> None:
    env = {
        "ENGAGE_BRIDGE_REDIS_URL": redis_server.url,
        "ENGAGE_SMARTER_API_URL": emulator.url,
        "ENGAGE_SMARTER_API_KEY": emulator.api_key,
        "ENGAGE_SMARTER_ORG_ID": emulator.org_id,
        "ENGAGE_BRIDGE_WEB_ENABLED": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()

    async def lines() -> AsyncIterator[str]:
        yield "Hi, my name is Grace\n"

    console = ConsoleAdapter(lines=lines(), out=out, session_id="cli")
    roles: set[Role] = {"listeners", "workers"}
    settings = Settings.load(http_port=0)
    async with BridgeRuntime(settings, adapters=[console], roles=roles) as rt:
        await asyncio.wait_for(rt.wait(), 20)
    assert "Nice to meet you, Grace" in out.getvalue()

    key = "console:local:terminal:cli"
    code, listed = await asyncio.to_thread(run_cli, "threads", "list")
    assert code == 0
    assert listed.splitlines()[1].startswith(key + "\t")
    code, shown = await asyncio.to_thread(run_cli, "threads", "show", key)
    assert "source: console" in shown
    code, history = await asyncio.to_thread(run_cli, "history", key)
    assert code == 0
    assert "user: Hi, my name is Grace" in history
    assert "agent: Turn 1. Nice to meet you, Grace." in history
    code, forgot = await asyncio.to_thread(run_cli, "threads", "forget", key)
    assert code == 0
    assert forgot.startswith(f"forgot thread {key}")
    code, rebuilt = await asyncio.to_thread(run_cli, "rebuild-map")
    assert rebuilt.strip() == "rebuilt 1 thread record(s) from Engage Smarter conversations"
    code, listed = await asyncio.to_thread(run_cli, "threads", "list")
    assert listed.splitlines()[1].startswith(key + "\t")


# The real thing: `engage-bridge run` as a process, with no configuration at all


@contextlib.asynccontextmanager
async def engage_bridge(
    cwd: Path, env: dict[str, str], *args: str, stdin: int | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    # Logs go to a file: an unread stderr pipe could fill up and stall the process.
    with (cwd / f"{args[0]}.log").open("ab") as log_file:
        process = await asyncio.create_subprocess_exec(
            ENGAGE_BRIDGE,
            *args,
            cwd=cwd,
            env=env,
            stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def read_until(stream: asyncio.StreamReader, needle: str) -> str:
    seen = ""
    async with asyncio.timeout(30):
        while needle not in seen:
            line = await stream.readline()
            if not line:
                break
            seen += line.decode()
    return seen


@pytest.mark.slow
async def test_run_with_no_configuration_serves_everything_and_chat_answers(
    tmp_path: Path,
) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    port = 8080
    if not port_is_free(port):  # another bridge on this machine: the one knob we must turn
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env["ENGAGE_BRIDGE_HTTP_PORT"] = str(port)
    base = f"http://127.0.0.1:{port}"
    async with engage_bridge(tmp_path, env, "run") as run:
        assert run.stdout is not None
        banner = await read_until(run.stdout, "Stop with Ctrl+C.")
        assert f"Playground:     {base}/playground" in banner, banner
        assert f"built-in emulator at {base}/emulator" in banner
        assert "embedded redis-server (started)" in banner
        assert "engage-bridge chat" in banner
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert (await client.get("/emulator/v1/agents")).status_code in (401, 403, 422)

        async with engage_bridge(tmp_path, env, "chat", stdin=asyncio.subprocess.PIPE) as chat:
            assert chat.stdin is not None
            assert chat.stdout is not None
            chat.stdin.write(b"Hi, my name is Ada\n")
            await chat.stdin.drain()
            answer = await read_until(chat.stdout, "pensions-questions-latest:")
            key = answer.split("Thread ", 1)[1].split(".\n", 1)[0]
            assert "Nice to meet you, Ada" in answer
            chat.stdin.write(b"What about my pension?\n")
            await chat.stdin.drain()
            again = await read_until(chat.stdout, "pensions-questions-latest:")
            assert "Turn 2. Nice to see you again, Ada." in again
            chat.stdin.close()
            async with asyncio.timeout(20):
                assert await chat.wait() == 0
        # The terminal is chat's interface: no routine log lines interleave with the answers.
        assert " info " not in (tmp_path / "chat.log").read_text()
        # One data dir: the chat's thread is listed and its history read while `run` is up.
        listed, errors = await maintenance(tmp_path, env, "threads")
        assert listed.splitlines()[0] == "thread_key\tconversation_id\tagent\tstatus\tupdated"
        assert [line.split("\t")[0] for line in listed.splitlines()[1:]] == [key]
        assert errors == ""
        history, errors = await maintenance(tmp_path, env, "history", key)
        assert "agent: Turn 2. Nice to see you again, Ada." in history
        assert errors == ""

        run.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await run.wait() == 0
        rest = (await run.stdout.read()).decode()
        assert "engage-bridge stopped." in rest
    assert not (tmp_path / ".engage-bridge" / "redis.sock").exists()
    # ...and after it stopped: the emulator's file and the embedded Redis hold it all.
    after, errors = await maintenance(tmp_path, env, "history", "--json", key)
    assert json.loads(after)["messages"][0]["content"] == "Hi, my name is Ada"
    assert errors == ""
    assert not (tmp_path / ".engage-bridge" / "redis.sock").exists()  # not left running


@pytest.mark.slow
async def test_run_warns_at_start_about_a_setting_nobody_reads(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ENGAGE_BRIDGE_HTTP_PORT": "0",
        "ENGAGE_BRIDGE_WORKER_CONCURENCY": "secret-looking-value",
    }
    async with engage_bridge(tmp_path, env, "run") as run:
        assert run.stdout is not None
        await read_until(run.stdout, "Stop with Ctrl+C.")
        run.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await run.wait() == 0
    logged = (tmp_path / "run.log").read_text()
    assert logged.count("ENGAGE_BRIDGE_WORKER_CONCURENCY is not a setting") == 1, logged
    assert "did you mean ENGAGE_BRIDGE_WORKER_CONCURRENCY?" in logged
    assert "secret-looking-value" not in logged


async def maintenance(cwd: Path, env: dict[str, str], *args: str) -> tuple[str, str]:
    """A maintenance command as a process with piped output: (stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        ENGAGE_BRIDGE,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def agent_entries(client: httpx.AsyncClient, thread: str, count: int) -> list[dict[str, str]]:
    async with asyncio.timeout(30):
        while True:
            poll = (await client.get(f"/playground/api/threads/{thread}")).json()
            answers = [e for e in poll["entries"] if e["role"] in ("agent", "notice")]
            if len(answers) >= count:
                return [{**e, "conversation_id": poll["conversation_id"]} for e in answers]
            await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_killed_and_restarted_run_answers_an_old_thread_with_its_history(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    env["ENGAGE_BRIDGE_HTTP_PORT"] = str(port)
    # Default lease and claim (30 s / 60 s): the kill may land before the first turn let go of
    # its thread, and the restarted run, which started the data dir's Redis, takes it at once.
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        async with engage_bridge(tmp_path, env, "run") as run:
            assert run.stdout is not None
            await read_until(run.stdout, "Stop with Ctrl+C.")
            thread = (await client.post("/playground/api/threads", json={})).json()["id"]
            say = {"client_id": "first-1", "text": "Hi, my name is Ada"}
            await client.post(f"/playground/api/threads/{thread}/messages", json=say)
            [first] = await agent_entries(client, thread, 1)
            run.kill()  # no clean shutdown: the emulator's file must hold what it answered
            await run.wait()
        async with engage_bridge(tmp_path, env, "run") as run:
            assert run.stdout is not None
            await read_until(run.stdout, "Stop with Ctrl+C.")
            say = {"client_id": "second-2", "text": "When can I take my pension?"}
            await client.post(f"/playground/api/threads/{thread}/messages", json=say)
            answers = await agent_entries(client, thread, 2)
            run.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                assert await run.wait() == 0
    assert "Nice to meet you, Ada" in first["text"]
    assert [a["role"] for a in answers] == ["agent", "agent"], answers
    assert "Turn 2. Nice to see you again, Ada." in answers[1]["text"]
    assert answers[1]["conversation_id"] == first["conversation_id"]


def test_check_names_the_missing_org_id_once(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGE_SMARTER_API_KEY", "a-real-looking-api-key-0123456789")
    code, out = run_cli("check")
    assert code == 1
    assert (
        "FAIL configuration: set ENGAGE_SMARTER_ORG_ID (ENGAGE_SMARTER_API_KEY is set without it)"
    ) in out
    assert out.count("FAIL") == 1, out
    assert "SKIP agent pensions-questions-latest: needs Engage Smarter" in out


async def test_check_gives_up_on_a_silent_platform_in_time_without_library_chatter(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open, say nothing
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-" + "1" * 40)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s" * 40)
    monkeypatch.setenv("ENGAGE_BRIDGE_SLACK_API_URL", f"http://127.0.0.1:{port}/api/")
    monkeypatch.setattr("bridge.check.PLATFORM_SECONDS", 0.5)
    async with server:
        code, out = await asyncio.to_thread(run_cli, "check")
    assert code == 1
    assert (
        "FAIL platform slack: no answer within 0.5 s (check SLACK_BOT_TOKEN "
        "(and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN))"
    ) in out
    assert out.count("FAIL") == 1, out
    assert capsys.readouterr().err == ""  # no Bolt/discord.py warnings, no progress in a pipe


def test_check_silences_library_start_up_notes_but_not_their_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bridge.check import quiet_libraries

    with caplog.at_level(logging.INFO), quiet_libraries():
        logging.getLogger("discord.client").warning("PyNaCl is not installed")
        logging.getLogger("slack_bolt.AsyncApp").warning("`token` will be unused.")
        logging.getLogger("discord.client").error("login failed")
    logging.getLogger("discord.client").warning("after check")
    assert [r.getMessage() for r in caplog.records] == ["login failed", "after check"]


async def test_dead_letters_replay_all_queues_every_letter_again(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, redis_client: Any
) -> None:
    from bridge.maintenance import offline_bridge
    from tests.fixtures_core import message, thread_key

    monkeypatch.setenv("ENGAGE_BRIDGE_REDIS_URL", redis_server.url)
    async with offline_bridge(Settings.load()) as bridge:
        for n in (1, 2):
            thread = thread_key(n, platform="web")
            await bridge.dead_letters.store(f"turn{n}", str(thread), (message(thread),), "boom")
    code, listed = await asyncio.to_thread(run_cli, "dead-letters", "list", "--json")
    assert [d["turn_id"] for d in json.loads(listed)] == ["turn1", "turn2"]
    code, out = await asyncio.to_thread(run_cli, "dead-letters", "replay", "--all")
    assert code == 0
    assert out == (
        "replayed 2 dead letter(s): 2 message(s) queued again "
        "(a running bridge's workers answer them)\n"
    )
    assert await redis_client.llen("{web:W1:C1:t1}:inbox") == 1
    assert await asyncio.to_thread(run_cli, "dead-letters", "list", "--json") == (0, "[]\n")


def test_the_banner_names_chat_as_the_user_can_type_it(tmp_path: Path) -> None:
    program = tmp_path / "bin" / "engage-bridge"
    program.parent.mkdir()
    program.write_text("")
    # `make run` starts .venv/bin/engage-bridge, which is not on PATH.
    assert chat_command(".venv/bin/engage-bridge", None) == ".venv/bin/engage-bridge chat"
    assert chat_command(str(program), "/usr/bin/engage-bridge") == f"{program} chat"
    # Installed on PATH: the short form works.
    assert chat_command(str(program), str(program)) == "engage-bridge chat"
