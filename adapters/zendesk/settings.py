"""Zendesk settings (`ZENDESK_*`), read by the adapter itself so the core stays platform-neutral."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from bridge.platforms import PlatformSettings


class ZendeskSettings(PlatformSettings):
    """The webhook's signing secret switches the adapter on; the rest is needed to answer."""

    platform: ClassVar[str] = "zendesk"
    model_config = SettingsConfigDict(env_prefix="ZENDESK_", env_file=".env", extra="ignore")

    webhook_secret: SecretStr | None = None
    # https://<subdomain>.zendesk.com (tests point it at a fake)
    url: str = ""
    email: str = ""
    api_token: SecretStr | None = None
    # The agent the bot's comments are authored by; its own comments never start a turn.
    bot_user_id: str = ""
    # Internal notes by agents reach the agent (and hand the ticket over) only when switched on.
    forward_internal_notes: bool = False
    # Solve the ticket when the bridge resolves it (a `resolve` typed in the ticket).
    solve_on_resolve: bool = True

    def is_enabled(self) -> bool:
        return self.webhook_secret is not None
