"""Slack files for the agent: text-like ones read (capped) and inlined, others described.

Read at ingress, before the message is stored, within a fixed time budget: the stored message
then holds the text the agent sees, so every retry of a turn sends the same content (the
crash-safe retry recognises a stored message by its content) and a worker never needs a
platform token. A file that is too large, not text, or not read in time is described instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import PurePosixPath

import aiohttp

from bridge.models import Attachment, InboundMessage

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = frozenset(
    {
        "txt", "md", "markdown", "rst", "csv", "tsv", "json", "jsonl", "yaml", "yml", "toml",
        "ini", "cfg", "conf", "log", "xml", "html", "css", "py", "js", "ts", "tsx", "jsx",
        "java", "kt", "go", "rs", "rb", "php", "c", "h", "cc", "cpp", "hpp", "cs", "swift",
        "scala", "sh", "bash", "zsh", "sql", "r", "lua", "pl", "tf", "dockerfile", "makefile",
    }
)  # fmt: skip
TEXT_MIME_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/javascript",
     "application/x-sh", "application/sql", "application/toml"}
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class FileLimits:
    """Bounds on what one message may make the bridge download."""

    max_bytes: int = 100_000  # per file; a 20 KB source file fits, a log dump does not
    max_files: int = 5
    # Slack wants its 2xx within 3 s and the message must be stored first: downloads of one
    # message share this budget (Slack's file CDN serves a 100 KB file in well under 0.2 s).
    budget_seconds: float = 1.0


class NotReadable(Exception):
    """Why a file is described rather than inlined."""


def is_text_like(file: Attachment) -> bool:
    mime = (file.mime_type or "").split(";")[0].strip().lower()
    suffix = PurePosixPath(file.name.lower()).suffix.lstrip(".") or file.name.lower()
    return mime.startswith("text/") or mime in TEXT_MIME_TYPES or suffix in TEXT_EXTENSIONS


def described(file: Attachment, reason: str) -> str:
    size = f"{file.size} bytes" if file.size is not None else "size unknown"
    return f"[file {file.name} ({file.mime_type or 'unknown type'}, {size}): {reason}]"


def inlined(file: Attachment, content: str) -> str:
    return f"[file {file.name}]\n{content}\n[end of file {file.name}]"


class FileReader:
    """Downloads text-like files with the workspace's bot token (scope `files:read`)."""

    def __init__(self, limits: FileLimits | None = None) -> None:
        self.limits = limits or FileLimits()

    async def with_files(
        self, message: InboundMessage, session: aiohttp.ClientSession | None, token: str | None
    ) -> InboundMessage:
        """`message` with its files' text (or descriptions) appended and no attachments left."""
        if not message.attachments:
            return message
        deadline = time.monotonic() + self.limits.budget_seconds
        parts = [message.text] if message.text else []
        read = 0
        for file in message.attachments:
            reason = self._refusal(file, read, token) or ("" if session else "not readable here")
            if reason:
                parts.append(described(file, reason))
                continue
            assert session is not None
            try:
                content = await self._download(file, session, token or "", deadline)
            except NotReadable as exc:
                parts.append(described(file, str(exc)))
                continue
            read += 1
            parts.append(inlined(file, content))
        return dataclasses.replace(message, text="\n\n".join(parts), attachments=())

    def _refusal(self, file: Attachment, read: int, token: str | None) -> str:
        if not is_text_like(file):
            return "not a text file, not read"
        if file.size is None or file.size > self.limits.max_bytes:
            return f"larger than {self.limits.max_bytes} bytes, not read"
        if read >= self.limits.max_files:
            return "too many files in one message, not read"
        if not token or not file.url.startswith(("https://", "http://")):
            return "not readable here"
        return ""

    async def _download(
        self, file: Attachment, session: aiohttp.ClientSession, token: str, deadline: float
    ) -> str:
        limit = self.limits.max_bytes
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NotReadable("not read in time")
        try:
            async with asyncio.timeout(remaining):
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(file.url, headers=headers, allow_redirects=False) as resp:
                    if resp.status != 200:
                        raise NotReadable(f"could not be read (HTTP {resp.status})")
                    if resp.content_type == "text/html" and not file.name.endswith(".html"):
                        # Slack's sign-in page, what a token without files:read gets.
                        raise NotReadable("could not be read (files:read missing?)")
                    data = await resp.content.read(limit + 1)
        except TimeoutError:
            raise NotReadable("not read in time") from None
        except aiohttp.ClientError as exc:
            raise NotReadable(f"could not be read ({type(exc).__name__})") from None
        if len(data) > limit:
            raise NotReadable(f"larger than {limit} bytes, not read")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise NotReadable("not UTF-8 text, not read") from None
