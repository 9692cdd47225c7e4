"""Discord attachments into the user message: text files fetched from the CDN (never more than
the configured cap), the rest referenced by name, type and size."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp

from adapters.discord.settings import DiscordSettings
from bridge.files import Fetched, decode, human_size, why_not_inline, with_files
from bridge.models import Attachment, InboundMessage

log = logging.getLogger(__name__)

# Per file; the listener reads messages in gateway order, so a slow CDN delays what follows.
FETCH_SECONDS = 5.0
_CHUNK = 16 * 1024


class Attachments:
    """Inlines what fits; owns its own HTTP session (the CDN needs no token)."""

    def __init__(self, options: DiscordSettings) -> None:
        self._limit = options.attachment_inline_bytes
        self._total = options.attachment_inline_total_bytes
        self._origins = tuple(o.rstrip("/") + "/" for o in options.attachment_origins)
        self._session: aiohttp.ClientSession | None = None

    async def inline(self, message: InboundMessage) -> InboundMessage:
        if not message.attachments:
            return message
        budget = self._total
        fetched = []
        for attachment in message.attachments:
            reason = why_not_inline(attachment, self._limit, budget)
            if reason is None and not attachment.url.startswith(self._origins):
                reason = "not on Discord's CDN"  # never fetch an arbitrary URL
            text = None
            if reason is None:
                text, reason = await self._download(attachment)
                budget -= attachment.size or 0
            if reason is not None:
                log.info("discord: attachment of message %s not inlined: %s",
                         message.message_id, reason)  # fmt: skip
            fetched.append(Fetched(attachment, text, reason))
        return dataclasses.replace(message, text=with_files(message.text, fetched), attachments=())

    async def _download(self, attachment: Attachment) -> tuple[str | None, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(FETCH_SECONDS):
                async with self._session.get(attachment.url, allow_redirects=False) as response:
                    if response.status != 200:
                        return None, f"download failed ({response.status})"
                    data = await _read_at_most(response, self._limit)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"download failed ({type(exc).__name__})"
        if data is None:
            return None, f"larger than the {human_size(self._limit)} limit"
        text = decode(data)
        return (text, None) if text is not None else (None, "not a text file")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` (the reported size can be wrong)."""
    data = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)
