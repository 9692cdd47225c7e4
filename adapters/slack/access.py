"""Slash-command checks (replays, permissions with channel membership) and private refusals."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import events
from adapters.slack.apierrors import error_code
from adapters.slack.outbound import translate
from bridge import permissions
from bridge.inbox import storage
from bridge.models import ThreadKey
from bridge.store.claims import claim_command
from bridge.threadmap import ThreadMap

log = logging.getLogger(__name__)

# conversations.members pages: 1,000 is Slack's documented maximum per page; a private channel
# larger than a few pages is rare, and every page is one Tier 4 call.
_MEMBERS_PAGE = 1000
_MAX_PAGES = 20


async def sees_channel(client: AsyncWebClient, channel: str, user_id: str) -> bool:
    """Whether `user_id` can read `channel`: any public channel, or a member of a private one.

    Whatever cannot be verified (the bot is not in the channel, Slack errors) counts as no.
    """
    try:
        info: Any = await client.conversations_info(channel=channel)
        facts = info["channel"]
        if facts.get("is_im"):
            return bool(facts.get("user") == user_id)
        if not (facts.get("is_private") or facts.get("is_mpim") or facts.get("is_group")):
            return True
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page: Any = await client.conversations_members(
                channel=channel, limit=_MEMBERS_PAGE, cursor=cursor
            )
            if user_id in page.get("members", ()):
                return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return False
    except SlackApiError as exc:
        log.info("slack channel membership not verified: %s", error_code(exc))
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.info("slack channel membership not verified: %s", type(exc).__name__)
    return False


async def first_delivery(redis: aioredis.Redis, form: Mapping[str, Any]) -> bool:
    """False for a replay of a slash command already handled (a signed body stays valid for
    5 minutes; each replay of `ask` would otherwise open another thread and turn)."""
    first = await claim_command(redis, events.PLATFORM, events.command_digest(form))
    if not first:
        log.info("slash command replay dropped", extra={"team_id": form.get("team_id")})
    return bool(first)


async def refusal(
    client: AsyncWebClient,
    threads: ThreadMap,
    staff: Collection[str],
    form: Mapping[str, Any],
    command: str,
    thread: ThreadKey,
) -> str:
    """Why the caller may not run `command` on `thread` ("" if they may): checked at once so
    the slash command's answer says it, and again by the core when the command runs."""
    if command == "ask":
        return ""
    user = str(form.get("user_id", ""))
    by_link = thread.channel != str(form.get("channel_id", ""))
    visible = not by_link or await sees_channel(client, thread.channel, user)
    async with storage("thread record"):
        record = await threads.get(thread)
    verdict = permissions.decide(
        command,
        permissions.Caller(user, user in staff),
        permissions.Target(
            status=record.status if record else None,
            starter=record.starter if record else "",
            is_dm=thread.channel.startswith("D"),
            visible=visible,
        ),
    )
    if verdict.allowed:
        return ""
    log.warning(
        "slash command %s refused: %s",
        command,
        verdict.reason,
        extra={"thread_key": str(thread), "user_id": user},
    )
    return verdict.reason


async def tell(client: AsyncWebClient, thread: ThreadKey, user_id: str, text: str) -> None:
    """An ephemeral message in the thread; a DM from the app when the user is not in its channel."""
    try:
        await client.chat_postEphemeral(
            channel=thread.channel, user=user_id, text=text, thread_ts=thread.thread
        )
        return
    except SlackApiError as exc:
        if error_code(exc) not in ("user_not_in_channel", "channel_not_found"):
            raise translate(exc, "chat.postEphemeral") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise translate(exc, "chat.postEphemeral") from exc
    try:
        await client.chat_postMessage(channel=user_id, text=text)
    except (SlackApiError, TimeoutError, aiohttp.ClientError) as exc:
        raise translate(exc, "chat.postMessage") from exc
