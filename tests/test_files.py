"""bridge.files: which attachments are inlined and how files read in the agent's input."""

from __future__ import annotations

import pytest

from bridge.files import Fetched, decode, is_text_like, why_not_inline, with_files
from bridge.models import Attachment


def att(name: str, mime: str | None = None, size: int | None = 100) -> Attachment:
    return Attachment(name=name, url=f"https://cdn.example/{name}", mime_type=mime, size=size)


@pytest.mark.parametrize(
    ("name", "mime", "text_like"),
    [
        ("notes.txt", "text/plain", True),
        ("data.json", "application/json", True),
        ("main.py", None, True),
        ("README.MD", "application/octet-stream", True),
        ("photo.png", "image/png", False),
        ("clip.ts", "video/mp2t", False),  # a video, whatever the extension says
        ("archive.zip", "application/zip", False),
    ],
)
def test_text_like_is_decided_by_type_then_extension(
    name: str, mime: str | None, text_like: bool
) -> None:
    assert is_text_like(att(name, mime)) is text_like


def test_the_decision_to_download_uses_the_reported_size_and_the_message_budget() -> None:
    assert why_not_inline(att("a.txt", size=100), limit=1000, budget=1000) is None
    assert why_not_inline(att("a.txt", size=2000), limit=1000, budget=5000) == (
        "larger than the 1000 B limit"
    )
    assert why_not_inline(att("a.txt", size=900), limit=1000, budget=800) == (
        "over the limit for all files of one message"
    )
    assert why_not_inline(att("a.txt", size=None), limit=1000, budget=1000) == "size unknown"
    assert why_not_inline(att("a.bin"), limit=1000, budget=1000) == "not a text file"


def test_bytes_that_are_not_utf8_text_are_not_inlined() -> None:
    assert decode("\ufeffhé".encode()) == "hé"
    assert decode(b"\xff\xfe\x00a") is None
    assert decode(b"a\x00b") is None


def test_files_follow_the_text_inlined_between_markers_or_referenced() -> None:
    rendered = with_files(
        "please look",
        [
            Fetched(att("a.csv", "text/csv", 8), text="x,y\n1,2\n"),
            Fetched(att("b.pdf", "application/pdf", 3 * 2**20), skipped="not a text file"),
        ],
    )

    assert rendered == (
        "please look\n\n"
        "--- attachment: a.csv (text/csv, 8 B) ---\nx,y\n1,2\n--- end of a.csv ---\n\n"
        "[attachment not read: b.pdf (application/pdf, 3.0 MB): not a text file]"
    )
