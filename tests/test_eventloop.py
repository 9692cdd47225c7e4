"""The long-running commands' event loop: uvloop when it loads and is on, asyncio's otherwise.

The rest of the suite runs on asyncio's loop; the tests that lean on loop details (timers and
transports of the HTTP head deadline, a cancel swallowed by Python 3.11's wait_for) run here on
uvloop too. `run` itself on uvloop (signals, the embedded redis-server) is covered by the
subprocess tests in test_cli.py and test_restart_e2e.py.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest
import uvloop

from bridge import cli, eager, eventloop
from bridge.config import Settings
from bridge.logs import MANAGED_LOGGERS
from tests import test_eager as eager_cases
from tests import test_http_slow_clients as http_cases
from tests import test_worker as worker_cases
from tests.redis_server import RedisServer


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_coroutine_when_on() -> None:
    assert eventloop.run(_loop_module(), use_uvloop=True) == uvloop.Loop.__module__


def test_asyncio_runs_it_when_off() -> None:
    assert eventloop.loop_factory(False) is None
    assert eventloop.run(_loop_module(), use_uvloop=False).startswith("asyncio")


def test_a_uvloop_that_cannot_load_falls_back_to_asyncio_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # the import raises ImportError
    with caplog.at_level(logging.INFO, logger="bridge.eventloop"):
        module = eventloop.run(_loop_module(), use_uvloop=True)
    assert module.startswith("asyncio")
    assert [r.getMessage() for r in caplog.records] == [
        "uvloop is not available, using asyncio's event loop"
    ]


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_UVLOOP", "false")
    assert Settings().uvloop is False
    monkeypatch.delenv("ENGAGE_BRIDGE_UVLOOP")
    assert Settings().uvloop is True


@pytest.fixture
def loops_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every command replaced by one that notes the module of the loop it runs on."""
    for name in list(os.environ):
        if name.startswith(("ENGAGE_", "SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []

    async def note(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
        seen.append(await _loop_module())
        return 0

    monkeypatch.setattr(cli, "COMMANDS", dict.fromkeys(cli.COMMANDS, note))
    # configure_logging() changes the root logger and the quiet ones: leave them as found.
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in MANAGED_LOGGERS)]
    handlers, levels = list(loggers[0].handlers), [lg.level for lg in loggers]
    yield seen
    loggers[0].handlers[:] = handlers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_run_and_chat_use_uvloop_and_short_commands_do_not(loops_seen: list[str]) -> None:
    for argv in (["run"], ["chat"], ["check"], ["threads"]):
        assert cli.main(argv, out=io.StringIO()) == 0
    uv = uvloop.Loop.__module__
    assert loops_seen[:2] == [uv, uv]
    assert all(module.startswith("asyncio") for module in loops_seen[2:])


def test_run_uses_asyncio_when_the_setting_is_off(
    loops_seen: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_UVLOOP", "false")
    assert cli.main(["run"], out=io.StringIO()) == 0
    assert loops_seen[0].startswith("asyncio")


UVLOOP_CASES: list[Callable[[], Coroutine[Any, Any, None]]] = [
    http_cases.test_a_client_dribbling_its_headers_is_dropped_while_others_are_served,
    http_cases.test_a_silent_connection_is_closed_without_an_answer,
    http_cases.test_the_next_request_on_a_kept_alive_connection_has_the_deadline_too,
    http_cases.test_a_head_growing_over_the_cap_across_reads_is_400,
    http_cases.test_a_body_too_slow_ends_the_connection_with_the_408,
]


async def _on_uvloop(case: Coroutine[Any, Any, None]) -> None:
    module = await _loop_module()
    await case
    assert module == uvloop.Loop.__module__


@pytest.mark.parametrize("case", UVLOOP_CASES, ids=lambda case: case.__name__)
def test_the_http_head_deadline_and_cap_hold_on_uvloop(
    case: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    eventloop.run(_on_uvloop(case()), use_uvloop=True)


EAGER_CASES: list[Callable[[], Coroutine[Any, Any, None]]] = [
    eager_cases.test_the_first_step_runs_in_the_callback_as_the_task_in_its_own_context,
    eager_cases.test_a_started_task_cancelled_while_waiting_gets_the_cancel_where_it_waits,
    eager_cases.test_a_timeout_entered_in_the_first_step_belongs_to_the_task,
    eager_cases.test_pipelined_requests_are_all_answered,
    eager_cases.test_aiohttp_request_bodies_leave_one_iteration_sooner,
]


@pytest.mark.parametrize("case", EAGER_CASES, ids=lambda case: case.__name__)
def test_eager_starts_hold_on_uvloop(case: Callable[[], Coroutine[Any, Any, None]]) -> None:
    eventloop.run(_on_uvloop(case()), use_uvloop=True)


def test_run_starts_aiohttp_request_bodies_eagerly() -> None:
    async def factory_in_use() -> object:
        return asyncio.get_running_loop().get_task_factory()

    assert eventloop.run(factory_in_use(), use_uvloop=True) is eager.task_factory
    assert eventloop.run(factory_in_use(), use_uvloop=False) is eager.task_factory


def test_a_cancel_racing_a_command_send_still_stops_the_workers_on_uvloop(
    redis_server: RedisServer,
) -> None:
    case = worker_cases.test_a_cancel_racing_a_command_send_still_stops_the_workers
    eventloop.run(_on_uvloop(case(redis_server)), use_uvloop=True)
