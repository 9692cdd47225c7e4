"""Slash commands: deferred at once, submitted to the core like messages, answered by followup."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.errors import CALL_FAILED
from adapters.discord.events import PLATFORM, thread_key
from bridge.errors import BridgeError
from bridge.models import InboundMessage, Origin, ThreadKey

if TYPE_CHECKING:
    from adapters.discord.adapter import DiscordAdapter

log = logging.getLogger(__name__)

KEYWORDS = {
    "reset": "Start this conversation over with a fresh agent session",
    "status": "Show who handles this conversation and which agent answers",
    "handoff": "Hand this conversation to a human",
    "resume": "Give this conversation back to the agent",
    "resolve": "Mark this conversation as resolved",
}
_NO_MENTIONS = discord.AllowedMentions.none()


def install(client: discord.Client, adapter: DiscordAdapter) -> app_commands.CommandTree:
    tree: app_commands.CommandTree = app_commands.CommandTree(client)

    @tree.command(name="ask", description="Ask the agent a question (opens a thread)")
    @app_commands.describe(question="Your question")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await _ask(adapter, interaction, question)

    @tree.command(name="agent", description="Switch the agent that answers in this conversation")
    @app_commands.describe(name="The agent's name")
    async def agent(interaction: discord.Interaction, name: str) -> None:
        await _keyword(adapter, interaction, f"agent {name}")

    @agent.autocomplete("name")
    async def agent_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        found = await adapter.agent_choices(current)
        return [app_commands.Choice(name=label, value=name) for label, name in found]

    for keyword, description in KEYWORDS.items():
        tree.add_command(
            app_commands.Command(
                name=keyword, description=description, callback=_keyword_callback(adapter, keyword)
            )
        )
    return tree


async def sync(tree: app_commands.CommandTree, guild_ids: list[int]) -> None:
    """Guild syncs are instant (use them while testing); a global sync takes up to an hour."""
    try:
        if not guild_ids:
            await tree.sync()
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            await tree.sync(guild=guild)
    except CALL_FAILED as exc:
        log.warning("discord: slash commands not synced (%s); they may be missing or stale", exc)


def _keyword_callback(
    adapter: DiscordAdapter, keyword: str
) -> Callable[[discord.Interaction], Coroutine[Any, Any, None]]:
    async def callback(interaction: discord.Interaction) -> None:
        await _keyword(adapter, interaction, keyword)

    return callback


def interaction_thread(interaction: discord.Interaction) -> ThreadKey | None:
    """The conversation a command was typed in: a thread or a DM; None in a plain channel."""
    if interaction.guild_id is None:
        return thread_key(None, str(interaction.channel_id), str(interaction.channel_id))
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        return thread_key(str(interaction.guild_id), str(channel.parent_id), str(channel.id))
    return None


def _message(
    adapter: DiscordAdapter,
    interaction: discord.Interaction,
    key: ThreadKey,
    text: str,
    command: str | None,
) -> InboundMessage:
    user = interaction.user
    roles = {str(r.id) for r in getattr(user, "roles", ())}
    return InboundMessage(
        thread=key,
        message_id=f"interaction-{interaction.id}",
        user_id=str(user.id),
        text=text,
        sent_at=interaction.created_at,
        user_name=user.display_name,
        is_dm=interaction.guild_id is None,
        mentions_bot=True,
        origin=Origin.STAFF if roles & adapter.bot.staff_role_ids else Origin.USER,
        ticket_id=key.thread,
        command=command,
    )


async def _submit(adapter: DiscordAdapter, message: InboundMessage) -> str:
    inbox = adapter.inbox
    if inbox is None:
        return "The bridge is not listening yet; try again in a moment."
    try:
        await adapter.submit(inbox, message)
    except BridgeError:
        return "Sorry, that could not be stored; please try again."
    return ""


async def _refusal(adapter: DiscordAdapter, message: InboundMessage, command: str) -> str:
    """Refused at once, ephemerally (the core checks again when the command runs)."""
    try:
        reason = await adapter.refusal(message, command)
    except BridgeError:
        return "Sorry, that could not be checked; please try again."
    if reason:
        log.warning("discord: /%s refused in %s: %s", command, message.thread, reason)
    return reason


async def _ask(adapter: DiscordAdapter, interaction: discord.Interaction, question: str) -> None:
    await interaction.response.defer(thinking=True)
    asked = f"**{interaction.user.display_name}** asked: {question}"
    posted = await interaction.followup.send(asked, allowed_mentions=_NO_MENTIONS, wait=True)
    key = interaction_thread(interaction) or thread_key(
        str(interaction.guild_id), str(interaction.channel_id), str(posted.id)
    )
    problem = await _submit(adapter, _message(adapter, interaction, key, question, None))
    if problem:
        await interaction.followup.send(problem, ephemeral=True, allowed_mentions=_NO_MENTIONS)
    log.info("discord: /ask queued for %s", key)


async def _keyword(adapter: DiscordAdapter, interaction: discord.Interaction, command: str) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    key = interaction_thread(interaction)
    if key is None or key.platform != PLATFORM:
        text = f"Use `/{command.split()[0]}` inside a conversation thread or a DM with me."
    else:
        message = _message(adapter, interaction, key, f"/{command}", command)
        problem = await _refusal(adapter, message, command.split()[0])
        problem = problem or await _submit(adapter, message)
        text = problem or f"`/{command}` received."
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=_NO_MENTIONS)
