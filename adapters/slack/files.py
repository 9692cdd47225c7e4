"""Slack files for the agent: text-like ones read (capped) and inlined, others described.

Read at ingress, before the message is stored, within a fixed time budget: the stored message
then holds the text the agent sees, so every retry of a turn sends the same content (the
crash-safe retry recognises a stored message by its content) and a worker never needs a
platform token. What to inline and how it reads is shared with Discord (bridge/files.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import aiohttp

from bridge.files import Fetched, decode, human_size, why_not_inline, with_files
from bridge.models import Attachment, InboundMessage

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class FileLimits:
    """Bounds on what one message may make the bridge download."""

    max_bytes: int = 100_000  # per file; a 20 KB source file fits, a log dump does not
    total_bytes: int = 300_000  # all files of one message
    # Slack wants its 2xx within 3 s and the message must be stored first: downloads of one
    # message share this budget (Slack's file CDN serves a 100 KB file in well under 0.2 s).
    budget_seconds: float = 1.0


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
        budget = self.limits.total_bytes
        fetched = []
        for file in message.attachments:
            reason = why_not_inline(file, self.limits.max_bytes, budget)
            text = None
            if reason is None and (session is None or not token):
                reason = "not readable here"
            elif reason is None and session is not None and token:
                text, reason = await self._download(file, session, token, deadline)
                budget -= file.size or 0
            fetched.append(Fetched(file, text, reason))
        return dataclasses.replace(message, text=with_files(message.text, fetched), attachments=())

    async def _download(
        self, file: Attachment, session: aiohttp.ClientSession, token: str, deadline: float
    ) -> tuple[str | None, str | None]:
        limit = self.limits.max_bytes
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "not read in time"
        try:
            async with asyncio.timeout(remaining):
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(file.url, headers=headers, allow_redirects=False) as resp:
                    if resp.status != 200:
                        return None, f"download failed ({resp.status})"
                    if resp.content_type == "text/html" and not file.name.endswith(".html"):
                        # Slack's sign-in page, what a token without files:read gets.
                        return None, "download refused (files:read missing?)"
                    data = await resp.content.read(limit + 1)
        except TimeoutError:
            return None, "not read in time"
        except aiohttp.ClientError as exc:
            return None, f"download failed ({type(exc).__name__})"
        if len(data) > limit:
            return None, f"larger than the {human_size(limit)} limit"
        text = decode(data)
        return (text, None) if text is not None else (None, "not a text file")
