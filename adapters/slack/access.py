"""Slack facts the permission check needs (channel membership) and private refusals."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.outbound import translate
from bridge.models import ThreadKey

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
        log.info("slack channel membership not verified: %s", exc.response.get("error"))
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.info("slack channel membership not verified: %s", type(exc).__name__)
    return False


async def tell(client: AsyncWebClient, thread: ThreadKey, user_id: str, text: str) -> None:
    """An ephemeral message in the thread; a DM from the app when the user is not in its channel."""
    try:
        await client.chat_postEphemeral(
            channel=thread.channel, user=user_id, text=text, thread_ts=thread.thread
        )
        return
    except SlackApiError as exc:
        if exc.response.get("error") not in ("user_not_in_channel", "channel_not_found"):
            raise translate(exc, "chat.postEphemeral") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise translate(exc, "chat.postEphemeral") from exc
    try:
        await client.chat_postMessage(channel=user_id, text=text)
    except (SlackApiError, TimeoutError, aiohttp.ClientError) as exc:
        raise translate(exc, "chat.postMessage") from exc
