"""A note in the data dir saying where a running `engage-bridge run` serves its emulator.

Maintenance commands (`history`, `rebuild-map`, ...) read it so that, with no API key, they talk
to the emulator holding the running bridge's conversations instead of an empty one of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bridge.config import Settings

_FILE = "run.json"
# The built-in emulator's data (see bridge/emulator/store.py), beside the embedded Redis's.
_EMULATOR_FILE = "emulator.sqlite3"


def emulator_file(settings: Settings) -> Path:
    return settings.data_dir / _EMULATOR_FILE


@dataclass(frozen=True, slots=True)
class RunState:
    http_url: str
    emulator_url: str
    pid: int = 0


def record_run(data_dir: Path, state: RunState) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with_pid = RunState(state.http_url, state.emulator_url, state.pid or os.getpid())
    (data_dir / _FILE).write_text(json.dumps(asdict(with_pid)), encoding="utf-8")


def forget_run(data_dir: Path) -> None:
    path = data_dir / _FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def running_emulator(data_dir: Path) -> str | None:
    """The emulator URL of a `run` that is up in `data_dir`, or None."""
    try:
        state = RunState(**json.loads((data_dir / _FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if not state.pid or not _alive(state.pid):
        return None
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"{state.http_url}/healthz")
    except httpx.HTTPError:
        return None
    return state.emulator_url if response.status_code == 200 else None
