"""The maintenance commands' output: TSV in a pipe, a table on a terminal, JSON, progress."""

from __future__ import annotations

import io
import json

from bridge.output import Progress, fields, table

ROWS = [
    {"key": "slack:T:C:1", "status": "bot", "error": "line one\nline\ttwo"},
    {"key": "web:playground:local:abcd", "status": "human", "error": ""},
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_tsv_with_a_header_and_nothing_else() -> None:
    out = io.StringIO()
    table(out, ("key", "status", "error"), ROWS, as_json=False, noun="thread")
    assert out.getvalue().splitlines() == [
        "key\tstatus\terror",
        "slack:T:C:1\tbot\tline one line two",
        "web:playground:local:abcd\thuman\t",
    ]


def test_a_terminal_gets_aligned_columns_and_a_count() -> None:
    out = Terminal()
    table(out, ("key", "status"), ROWS, as_json=False, noun="thread")
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["KEY", "STATUS"]
    assert lines[1].index("bot") == lines[2].index("human") == lines[0].index("STATUS")
    assert lines[-1] == "2 threads"


def test_json_is_an_array_of_objects_with_every_column() -> None:
    out = Terminal()
    table(out, ("key", "status"), ROWS, as_json=True, noun="thread")
    assert json.loads(out.getvalue()) == [
        {"key": "slack:T:C:1", "status": "bot"},
        {"key": "web:playground:local:abcd", "status": "human"},
    ]
    one = io.StringIO()
    fields(one, {"a": 1}, as_json=True)
    assert json.loads(one.getvalue()) == {"a": 1}


def test_progress_draws_a_bar_on_a_terminal_only() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress("replayed", total=4, stream=stream)
        for _ in range(4):
            progress.advance()
        progress.close()
    assert "[########################] 4/4 replayed" in terminal.getvalue()
    assert pipe.getvalue() == ""
    counting = Terminal()
    unknown = Progress("conversations read", stream=counting)
    unknown.advance(100)
    unknown.close()
    assert "conversations read: 100" in counting.getvalue()
