"""Discord: mentions open threads, threads and DMs are conversations, slash commands steer them."""

from adapters.discord.adapter import DiscordAdapter, create_adapter

__all__ = ["DiscordAdapter", "create_adapter"]
