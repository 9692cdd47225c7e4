"""Gap recovery: after a fresh IDENTIFY, read through REST what the gateway sent while no
listener held the shard (a SIGKILLed process's session cannot be resumed by its successor).

The listener writes, per guild, the newest message id it has handled (events are handled in
gateway order, so everything dispatched before it was handled too). On GUILD_CREATE the guild's
channels and active threads carry `last_message_id`; those newer than the stored id (minus a
small margin for snowflakes minted out of order) are paged with GET messages?after=. DMs have no
GUILD_CREATE, so their channels are remembered one by one and caught up on shard 0's READY.
Re-submitting a handled message is harmless: the inbox drops it by its dedupe key. Bounded: only
state younger than WINDOW_SECONDS, at most MAX_CHANNELS channels and MAX_PAGES pages each, and
discord.py paces the REST calls by Discord's rate limits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import discord
from redis.exceptions import RedisError

from adapters.discord.errors import CALL_FAILED
from adapters.discord.events import DM_WORKSPACE, ChannelFacts, ChannelKind
from bridge.store import Namespace
from bridge.threadmap import RedisClient

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000
WINDOW_SECONDS = 3600
"""Older state is dropped: after an hour offline, replaying the backlog would surprise users."""
MARGIN_MS = 2000
"""Snowflakes from different Discord nodes are only roughly time-ordered; re-read this much."""
MAX_CHANNELS = 100
MAX_PAGES = 5
PAGE = 100
_KEYS = Namespace("discord")
_MESSAGE_CHANNEL_TYPES = {0: ChannelKind.TEXT, 5: ChannelKind.TEXT, 10: ChannelKind.THREAD,
                          11: ChannelKind.THREAD, 12: ChannelKind.THREAD}  # fmt: skip


def upto_key(guild_id: str) -> str:
    """String: newest message id handled from the guild's events (EX WINDOW_SECONDS)."""
    return _KEYS.shared("upto", guild_id)


DM_UPTO_KEY = _KEYS.shared("dm-upto")
"""Hash DM channel id -> newest message id handled there (EX WINDOW_SECONDS, stale fields
pruned at each catch-up)."""


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    last_message_id: str | None
    facts: ChannelFacts


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Queued behind the READY/GUILD_CREATE that asked for it, ahead of later live events."""

    scope: str  # a guild id, or DM_WORKSPACE
    channels: tuple[Channel, ...] = ()


def snowflake_ms(snowflake: int | str) -> int:
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


def snowflake_at(unix_ms: int) -> int:
    return max(0, unix_ms - DISCORD_EPOCH_MS) << 22


def guild_catch_up(payload: Mapping[str, Any]) -> CatchUp:
    """The channels a GUILD_CREATE lists that can hold messages, with their newest message."""
    channels = []
    for raw in [*(payload.get("channels") or ()), *(payload.get("threads") or ())]:
        kind = _MESSAGE_CHANNEL_TYPES.get(int(raw.get("type", -1)))
        if kind is None:
            continue
        parent = raw.get("parent_id") if kind is ChannelKind.THREAD else None
        facts = ChannelFacts(kind, None if parent is None else str(parent))
        last = raw.get("last_message_id")
        channels.append(Channel(str(raw["id"]), None if last is None else str(last), facts))
    return CatchUp(str(payload["id"]), tuple(channels))


def channels_to_read(
    channels: Iterable[Channel], upto: int, now_ms: int
) -> list[tuple[Channel, int]]:
    """(channel, read after) for channels with messages newer than `upto`, newest first."""
    after = max(upto - (MARGIN_MS << 22), snowflake_at(now_ms - WINDOW_SECONDS * 1000))
    active = [c for c in channels if c.last_message_id and int(c.last_message_id) > after]
    active.sort(key=lambda c: int(c.last_message_id or 0), reverse=True)
    return [(c, after) for c in active[:MAX_CHANNELS]]


def dm_channels_to_read(
    cursors: Mapping[str, str], now_ms: int
) -> tuple[list[tuple[Channel, int]], list[str]]:
    """(DM channels to read, with their cursor) and the stale channel ids to forget."""
    oldest = now_ms - WINDOW_SECONDS * 1000
    stale = [c for c, last in cursors.items() if snowflake_ms(last) < oldest]
    fresh = sorted(
        ((c, int(last)) for c, last in cursors.items() if c not in stale),
        key=lambda item: item[1], reverse=True,
    )  # fmt: skip
    facts = ChannelFacts(ChannelKind.DM)
    chosen = [(Channel(c, None, facts), last - (MARGIN_MS << 22)) for c, last in fresh]
    return chosen[:MAX_CHANNELS], stale


class GapRecovery:
    """Records what the listener handled and reads back what it missed."""

    def __init__(self, redis: RedisClient, http: discord.http.HTTPClient) -> None:
        self._redis = redis
        self._http = http

    async def handled(self, payload: Mapping[str, Any]) -> None:
        """Called in gateway order once `payload` was handled (submitted or ignored)."""
        guild_id, message_id = payload.get("guild_id"), str(payload["id"])
        try:
            if guild_id is not None:
                await self._redis.set(upto_key(str(guild_id)), message_id, ex=WINDOW_SECONDS)
            else:
                pipe = self._redis.pipeline(transaction=False)
                pipe.hset(DM_UPTO_KEY, str(payload["channel_id"]), message_id)
                pipe.expire(DM_UPTO_KEY, WINDOW_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # Only costs recovery precision: the next handled message writes a newer id.
            log.warning("discord: could not record the handled position: %s", exc)

    async def missed(self, request: CatchUp) -> AsyncIterator[tuple[dict[str, Any], ChannelFacts]]:
        """Messages posted while no listener held the shard, oldest first per channel."""
        now_ms = int(time.time() * 1000)
        try:
            plan = await self._plan(request, now_ms)
        except (RedisError, OSError) as exc:
            log.warning("discord: no catch-up for %s (Redis unavailable: %s)", request.scope, exc)
            return
        if plan:
            log.info("discord: catching up %d channel(s) in %s", len(plan), request.scope)
        for channel, after in plan:
            async for payload in self._read(channel.id, after):
                if request.scope != DM_WORKSPACE:
                    payload["guild_id"] = request.scope  # REST messages omit it
                yield payload, channel.facts

    async def _plan(self, request: CatchUp, now_ms: int) -> list[tuple[Channel, int]]:
        if request.scope == DM_WORKSPACE:
            raw = await self._redis.hgetall(DM_UPTO_KEY)
            cursors = {_text(k): _text(v) for k, v in raw.items()}
            plan, stale = dm_channels_to_read(cursors, now_ms)
            if stale:
                await self._redis.hdel(DM_UPTO_KEY, *stale)
            return plan
        upto = await self._redis.get(upto_key(request.scope))
        if upto is None:
            # Nothing handled here within the window: earlier messages are out of reach, but
            # from now on a gap (this process dying before its first message) is recoverable.
            now = str(snowflake_at(now_ms))
            await self._redis.set(upto_key(request.scope), now, ex=WINDOW_SECONDS, nx=True)
            return []
        return channels_to_read(request.channels, int(upto), now_ms)

    async def _read(self, channel_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        for _ in range(MAX_PAGES):
            try:
                page = await self._http.logs_from(int(channel_id), PAGE, after=after)
            except CALL_FAILED as exc:
                log.warning("discord: catch-up of channel %s stopped: %s", channel_id, exc)
                return
            for payload in reversed(page):  # Discord pages newest first
                yield dict(payload)
            if len(page) < PAGE:
                return
            after = int(page[0]["id"])
        log.warning("discord: catch-up of channel %s stopped after %d pages", channel_id, MAX_PAGES)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
