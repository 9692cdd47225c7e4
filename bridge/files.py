"""Attachments in the agent's input: which files are text worth inlining, and how an inlined or
a skipped file reads in the user message. Pure; each adapter downloads with its own credentials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from bridge.models import Attachment
from bridge.sanitise import clean

TEXT_EXTENSIONS = frozenset({
    "txt", "text", "md", "markdown", "rst", "csv", "tsv", "json", "jsonl", "ndjson", "yaml",
    "yml", "toml", "ini", "cfg", "conf", "env", "log", "xml", "html", "htm", "css", "scss", "js",
    "mjs", "cjs", "ts", "tsx", "jsx", "py", "pyi", "ipynb", "rb", "php", "java", "kt", "kts",
    "scala", "go", "rs", "c", "h", "cc", "cpp", "hpp", "cs", "swift", "m", "sh", "bash", "zsh",
    "ps1", "bat", "sql", "graphql", "proto", "tf", "hcl", "gradle", "properties", "r", "jl",
    "lua", "pl", "dart", "vue", "svelte", "diff", "patch",
})  # fmt: skip
TEXT_MIME_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml",
     "application/toml", "application/javascript", "application/x-sh", "application/sql",
     "application/x-ndjson", "application/ld+json"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fetched:
    """What became of one attachment: its text, or why it was only referenced."""

    attachment: Attachment
    text: str | None = None
    skipped: str | None = None


def is_text_like(attachment: Attachment) -> bool:
    mime = (attachment.mime_type or "").split(";")[0].strip().lower()
    if mime.startswith("text/") or mime in TEXT_MIME_TYPES:
        return True
    suffix = PurePosixPath(attachment.name).suffix.lower().lstrip(".")
    return not mime.startswith(("image/", "audio/", "video/")) and suffix in TEXT_EXTENSIONS


def why_not_inline(attachment: Attachment, limit: int, budget: int) -> str | None:
    """Why `attachment` must not be downloaded (None: download it, at most `limit` bytes).

    Decided on the size the platform reports, before a single byte is fetched."""
    if not is_text_like(attachment):
        return "not a text file"
    if attachment.size is None:
        return "size unknown"
    if attachment.size > limit:
        return f"larger than the {human_size(limit)} limit"
    if attachment.size > budget:
        return "over the limit for all files of one message"
    return None


def decode(data: bytes) -> str | None:
    """UTF-8 text (a BOM dropped), or None when the bytes are not text after all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else clean(text)


def human_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def describe(attachment: Attachment) -> str:
    mime = attachment.mime_type or "unknown type"
    return f"{attachment.name} ({mime}, {human_size(attachment.size)})"


def with_files(text: str, fetched: Sequence[Fetched]) -> str:
    """The user's text followed by each file: inlined between markers, or referenced."""
    blocks = [text] if text else []
    for item in fetched:
        if item.text is not None:
            name = item.attachment.name
            blocks.append(
                f"--- attachment: {describe(item.attachment)} ---\n"
                f"{item.text.rstrip()}\n--- end of {name} ---"
            )
        else:
            reason = item.skipped or "not read"
            blocks.append(f"[attachment not read: {describe(item.attachment)}: {reason}]")
    return "\n\n".join(blocks)
