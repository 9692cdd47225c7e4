"""The README: its quick start is the two commands, its links land, its commands parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from bridge.cli import build_parser

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_quick_start_block_is_exactly_make_run_and_make_test() -> None:
    quick = README.split("## Quick start", 1)[1]
    block = quick.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make run", "make test"]


def test_every_internal_link_lands_on_a_heading() -> None:
    anchors = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", README, flags=re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert {"what-if-it-doesnt-answer", "slack-over-http-step-by-step"} <= links
    assert links - anchors == set()


def test_every_command_in_the_reference_parses() -> None:
    reference = README.split("## Command reference", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `engage-bridge ([^`]+)`", reference, flags=re.MULTILINE)
    assert len(rows) == 11
    parser = build_parser()
    for row in rows:
        # `[--option value]` dropped, placeholders filled, `a \| b` alternatives: the first one.
        row = re.sub(r"\[[^]]*\]", "", row).split("\\|")[0]
        row = row.replace("<key>", "slack:T:C:1").replace("<id>...", "turn-1")
        argv = shlex.split(row)
        assert parser.parse_args(argv).command == argv[0], row
