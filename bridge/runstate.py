"""Where the built-in emulator keeps its data: one file in the data dir for every process.

`run`, `chat` and the maintenance commands all open it (bridge/emulator/store.py), so a thread
started in one is seen by the others whether or not a `run` is up.
"""

from __future__ import annotations

from pathlib import Path

from bridge.config import Settings

_EMULATOR_FILE = "emulator.sqlite3"


def emulator_file(settings: Settings) -> Path:
    return settings.data_dir / _EMULATOR_FILE
