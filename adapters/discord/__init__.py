"""Discord: mentions open threads, threads and DMs are conversations, slash commands steer them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.discord.adapter import DiscordAdapter, create_adapter

__all__ = ["DiscordAdapter", "create_adapter"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the settings (adapters.discord.settings) are read for every
    # configuration, discord.py only where Discord is switched on.
    if name in __all__:
        from adapters.discord import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
