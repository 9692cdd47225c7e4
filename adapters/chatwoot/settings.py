"""Chatwoot settings (`CHATWOOT_*`), read by the adapter itself: the core stays platform-free."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bridge.platforms import PlatformSettings


class ChatwootSettings(PlatformSettings):
    """The webhook token switches the adapter on; the bot's access token answers."""

    platform: ClassVar[str] = "chatwoot"
    model_config = SettingsConfigDict(env_prefix="CHATWOOT_", env_file=".env", extra="ignore")

    # The secret path segment of the Agent Bot's outgoing URL: <public url>/chatwoot/webhook/<token>
    webhook_token: SecretStr | None = None
    # The Agent Bot's own secret (Chatwoot >= 4.13 signs with it): set it to require signatures.
    webhook_secret: SecretStr | None = None
    # Source addresses/networks allowed to post webhooks (empty: any), e.g. ["10.0.0.0/8"].
    allowed_sources: list[str] = Field(default_factory=list)
    url: str = ""
    bot_token: SecretStr | None = None
    # Used when a conversation event carries no account (older Chatwoot versions).
    account_id: str = ""
    # Private notes by agents reach the agent (and hand over) only when switched on.
    forward_private_notes: bool = False

    def is_enabled(self) -> bool:
        return self.webhook_token is not None
