"""Discord-only settings (`ENGAGE_BRIDGE_DISCORD_*`), kept out of the core's configuration."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DiscordSettings(BaseSettings):
    """Built once by `create_adapter` (tests pass their own); the token stays in `Settings`."""

    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_DISCORD_", env_file=".env", extra="ignore"
    )

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
