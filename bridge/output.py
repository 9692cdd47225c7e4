"""How the maintenance commands print: tables for people, TSV or JSON for programs, progress.

On a terminal: aligned columns under a header and a count line. Anywhere else (a pipe, a file):
TSV with a header line and nothing else, tabs and newlines inside values replaced by spaces, so
`cut`/`awk`/`sort` work and the format stays stable; `--json` gives one JSON array of objects.
Progress goes to stderr and only when stderr is a terminal: a pipe never sees it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

Row = Mapping[str, object]
_MAX_CELL = 60  # wider cells are cut on a terminal (the TSV and JSON keep them whole)
_BAR_WIDTH = 24
_REDRAW_SECONDS = 0.1


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def table(
    out: TextIO, columns: Sequence[str], rows: Sequence[Row], *, as_json: bool, noun: str
) -> None:
    """Print `rows` (each with every column) as JSON, an aligned table or TSV."""
    if as_json:
        print(json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=2), file=out)
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if not is_tty(out):
        print("\t".join(columns), file=out)
        for line in cells:
            print("\t".join(line), file=out)
        return
    cells = [[_cut(c) for c in line] for line in cells]
    widths = [max([len(col), *(len(line[i]) for line in cells)]) for i, col in enumerate(columns)]
    for line in [[c.upper() for c in columns], *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip(), file=out)
    print(f"{len(rows)} {noun}{'' if len(rows) == 1 else 's'}", file=out)


def fields(out: TextIO, values: Row, *, as_json: bool) -> None:
    """One record: `name: value` lines, or a JSON object."""
    if as_json:
        print(json.dumps(dict(values), indent=2), file=out)
        return
    for name, value in values.items():
        print(f"{name}: {_cell(value)}", file=out)


class Progress:
    """`[#####-----] 12/40 label` (or `label: 12` without a total) redrawn on stderr."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None):
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._on = is_tty(self._stream)
        self._drawn = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._on and time.monotonic() - self._drawn >= _REDRAW_SECONDS:
            self._draw()

    def close(self) -> None:
        if self._on:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        if self.total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * self.done // self.total)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            text = f"[{bar}] {self.done}/{self.total} {self.label}"
        else:
            text = f"{self.label}: {self.done}"
        self._stream.write("\r\x1b[2K" + text)
        self._stream.flush()
