"""What a Discord REST call raises besides discord.HTTPException: its answer never came (a lost
connection, a timeout) or came broken (a proxy cut the body short, and discord.py's JSON parse
raises ValueError). Either way the call's outcome is unknown: it may have happened."""

from __future__ import annotations

import aiohttp
import discord

UNANSWERED: tuple[type[Exception], ...] = (aiohttp.ClientError, OSError, ValueError)
# Any failed call, where its outcome does not matter (best-effort reads and decorations).
CALL_FAILED: tuple[type[Exception], ...] = (discord.HTTPException, *UNANSWERED)
