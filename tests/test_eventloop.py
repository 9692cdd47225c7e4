"""The long-running commands' event loop: uvloop when it loads and is on, asyncio's otherwise."""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest
import uvloop

from bridge import cli, eventloop
from bridge.config import Settings
from bridge.logs import MANAGED_LOGGERS


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
