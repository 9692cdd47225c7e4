"""Permission checks for Discord slash commands and refusals told by DM."""

from __future__ import annotations

import discord

from adapters.discord.errors import UNANSWERED
from bridge import permissions
from bridge.config import Staff
from bridge.errors import PlatformError
from bridge.inbox import storage
from bridge.models import InboundMessage
from bridge.threadmap import ThreadMap

_NO_MENTIONS = discord.AllowedMentions.none()


async def refusal(
    threads: ThreadMap | None, message: InboundMessage, command: str, staff: Staff
) -> str:
    """Why the sender may not run `command` in its thread ("" if they may, or if there is no
    Redis here to look: the core checks again when the command runs)."""
    if threads is None:
        return ""
    async with storage("thread record"):
        record = await threads.get(message.thread)
    verdict = permissions.decide_for(
        message,
        command,
        staff,
        status=record.status if record else None,
        starter=record.starter if record else "",
    )
    return "" if verdict.allowed else verdict.reason


async def tell(client: discord.Client, user_id: str, text: str) -> None:
    """A DM from the bot: the only place a keyword command's refusal is private on Discord."""
    try:
        channel = await client.create_dm(discord.Object(id=int(user_id)))
        await channel.send(text, allowed_mentions=_NO_MENTIONS)
    except discord.HTTPException as exc:
        raise PlatformError(f"Discord refused the DM: {exc.status} {exc.text}") from exc
    except UNANSWERED as exc:
        raise PlatformError(f"cannot DM on Discord: {exc}") from exc
