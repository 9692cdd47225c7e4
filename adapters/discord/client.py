"""discord.py wiring: the client, its intents, raw message capture, and start-up diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import discord

from adapters.discord.catchup import CatchUp, guild_catch_up
from adapters.discord.events import DM_WORKSPACE, ChannelFacts, ChannelKind
from adapters.discord.settings import DiscordSettings

PORTAL = "https://discord.com/developers/applications"

MISSING_INTENT_HELP = (
    "Discord refused the gateway connection (close code 4014): the bot asks for the privileged "
    "'Message Content' intent, which is not enabled for this application. Open "
    f"{PORTAL} -> your application -> Bot -> Privileged Gateway Intents, switch on "
    "'MESSAGE CONTENT INTENT', save, and start engage-bridge again."
)
BAD_TOKEN_HELP = (
    "Discord rejected the bot token (401 on users/@me). Open "
    f"{PORTAL} -> your application -> Bot -> Reset Token, and set the new token as "
    "DISCORD_BOT_TOKEN (the bot token, not the client secret or public key)."
)

MessageSink = Callable[[Mapping[str, Any], ChannelFacts | None], None]
ReactionSink = Callable[[Mapping[str, Any], bool, str], None]
RevisionSink = Callable[[str, Mapping[str, Any], ChannelFacts | None], None]
CatchUpSink = Callable[[CatchUp], None]


def intents() -> discord.Intents:
    """Guilds (channel and thread cache), guild and DM messages, and their content."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    wanted.guild_reactions = True  # 👍/👎 on answers are feedback
    wanted.dm_reactions = True
    return wanted


def build_client(settings: DiscordSettings, **options: Any) -> discord.Client:
    """A plain client, or an auto-sharded one when shard ids or a shard count are configured."""
    common: dict[str, Any] = {
        "intents": intents(),
        "allowed_mentions": discord.AllowedMentions.none(),
        "max_messages": None,  # the bridge keeps no message cache; Redis is its memory
        "chunk_guilds_at_startup": False,
        **options,
    }
    if settings.shard_ids is not None or settings.shard_count is not None:
        return discord.AutoShardedClient(
            shard_ids=settings.shard_ids,  # type: ignore[arg-type]  # None: all shards
            shard_count=settings.shard_count,
            **common,
        )
    return discord.Client(**common)


def capture_revisions(client: discord.Client, sink: RevisionSink) -> None:
    """Hand raw MESSAGE_UPDATE and MESSAGE_DELETE payloads to `sink` with the event's name, in
    gateway order (behind the MESSAGE_CREATE they revise)."""
    parsers: dict[str, Callable[[Any], None]] = client._connection.parsers
    for event in ("MESSAGE_UPDATE", "MESSAGE_DELETE"):
        original = parsers[event]

        def parse(
            data: Any, original: Callable[[Any], None] = original, event: str = event
        ) -> None:
            sink(event, data, channel_facts(client.get_channel(int(data["channel_id"]))))
            original(data)

        parsers[event] = parse

    bulk = parsers["MESSAGE_DELETE_BULK"]

    def parse_bulk(data: Any, parse_next: Callable[[Any], None] = bulk) -> None:
        # A moderator's bulk delete is a delete of each message.
        facts = channel_facts(client.get_channel(int(data["channel_id"])))
        for message_id in data.get("ids") or ():
            single = {k: v for k, v in data.items() if k != "ids"}
            sink("MESSAGE_DELETE", {**single, "id": message_id}, facts)
        parse_next(data)

    parsers["MESSAGE_DELETE_BULK"] = parse_bulk


def capture_message_payloads(client: discord.Client, sink: MessageSink) -> None:
    """Hand every raw MESSAGE_CREATE payload to `sink`, synchronously and in gateway order.

    `on_message` runs each event in its own task, which can reorder two messages of one
    thread, and gives a `discord.Message` where the pure normalizer wants the payload as
    recorded. Wrapping the parser keeps both: arrival order and the raw payload.
    """
    parsers: dict[str, Callable[[Any], None]] = client._connection.parsers
    original = parsers["MESSAGE_CREATE"]

    def parse_message_create(data: Any) -> None:
        sink(data, channel_facts(client.get_channel(int(data["channel_id"]))))
        original(data)

    parsers["MESSAGE_CREATE"] = parse_message_create


def capture_session_starts(client: discord.Client, sink: CatchUpSink) -> None:
    """Ask for a catch-up, in gateway order, whenever a fresh session starts seeing a guild
    (GUILD_CREATE) or shard 0 starts (READY: DMs). A RESUME sends neither: it replays instead."""
    parsers: dict[str, Callable[[Any], None]] = client._connection.parsers
    on_ready, on_guild_create = parsers["READY"], parsers["GUILD_CREATE"]

    def parse_ready(data: Any) -> None:
        if int((data.get("shard") or [0])[0]) == 0:
            sink(CatchUp(DM_WORKSPACE))
        on_ready(data)

    def parse_guild_create(data: Any) -> None:
        if not data.get("unavailable"):
            sink(guild_catch_up(data))
        on_guild_create(data)

    parsers["READY"] = parse_ready
    parsers["GUILD_CREATE"] = parse_guild_create


def channel_facts(channel: object | None) -> ChannelFacts | None:
    """What normalization needs to know about a cached channel; None when not cached."""
    if channel is None:
        return None
    if isinstance(channel, discord.Thread):
        return ChannelFacts(ChannelKind.THREAD, str(channel.parent_id))
    if isinstance(channel, discord.TextChannel):
        return ChannelFacts(ChannelKind.TEXT)
    if isinstance(channel, discord.DMChannel):
        return ChannelFacts(ChannelKind.DM)
    return ChannelFacts(ChannelKind.OTHER)


def capture_reactions(client: discord.Client, sink: ReactionSink) -> None:
    """Hand raw MESSAGE_REACTION_ADD/REMOVE payloads to `sink` with whether it was an add and
    a delivery id: session id and sequence number, which a RESUME's replay repeats."""
    parsers: dict[str, Callable[[Any], None]] = client._connection.parsers
    for event, added in (("MESSAGE_REACTION_ADD", True), ("MESSAGE_REACTION_REMOVE", False)):
        original = parsers[event]

        def parse(
            data: Any, original: Callable[[Any], None] = original, added: bool = added
        ) -> None:
            guild_id = data.get("guild_id")
            ws = client._connection._get_websocket(
                None if guild_id is None else int(guild_id), shard_id=None if guild_id else 0
            )
            sink(data, added, f"{ws.session_id}:{ws.sequence}")
            original(data)

        parsers[event] = parse
