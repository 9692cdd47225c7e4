"""Discord's settings: `DISCORD_BOT_TOKEN` and `ENGAGE_BRIDGE_DISCORD_*`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bridge.platforms import PlatformSettings


class DiscordSettings(PlatformSettings):
    """Read with the core's `Settings` (`settings.platform(DiscordSettings)`); tests pass their
    own."""

    platform: ClassVar[str] = "discord"
    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_DISCORD_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Enabled when a bot token is set.
    bot_token: SecretStr | None = Field(None, validation_alias="DISCORD_BOT_TOKEN")
    # This process's shards (None: all, with Discord's recommended count).
    shard_ids: list[int] | None = None
    shard_count: int | None = None
    # Guilds whose slash commands are synced at once (global commands take up to an hour).
    guild_ids: list[int] = Field(default_factory=list)

    # The agent's own status texts ("Looking up pension rules…") as a message in the thread,
    # edited in place and deleted when the answer comes; typing is shown either way.
    status_messages: bool = True
    # Discord's per-channel message bucket allows about 5 writes per 5 s; one status edit per
    # second leaves room for the answer itself (later texts overwrite earlier, unseen ones).
    status_edit_seconds: float = Field(1.0, ge=0.0)
    # Text-like attachments up to this size are downloaded and inlined into the user message.
    attachment_inline_bytes: int = Field(64 * 1024, ge=0)
    # All inlined attachments of one message together (the agent's context is not free).
    attachment_inline_total_bytes: int = Field(256 * 1024, ge=0)
    # Attachments are fetched only from here (the URL comes in the message payload).
    attachment_origins: list[str] = Field(
        default_factory=lambda: ["https://cdn.discordapp.com", "https://media.discordapp.net"]
    )

    def is_enabled(self) -> bool:
        return self.bot_token is not None
