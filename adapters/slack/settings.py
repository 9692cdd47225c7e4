"""Slack's settings: Slack's own names for the credentials, `ENGAGE_BRIDGE_SLACK_*` the rest."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bridge.platforms import PlatformSettings


class SlackSettings(PlatformSettings):
    """Read with the core's `Settings` (`settings.platform(SlackSettings)`); tests pass theirs."""

    platform: ClassVar[str] = "slack"
    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_SLACK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Enabled when a bot token is set (one workspace) or a client id (OAuth: many workspaces;
    # the rest of its settings are adapters/slack/oauth.py's SlackOAuthSettings). Socket Mode
    # when an app token is set too.
    bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    client_id: str | None = Field(None, validation_alias="SLACK_CLIENT_ID")
    api_url: str = "https://slack.com/api/"

    # Agent text never pings a channel, `@here` or a user group. `<@U123>` user mentions are
    # neutralised too unless this is on (an agent that is told user ids may then ping them).
    user_mentions: bool = False
    # Suggested prompts shown when someone opens the assistant (at most four); empty: one
    # built from the routed agent's description.
    suggested_prompts: list[str] = []
    # Text-like files up to this size are read (with the bot token, scope files:read) and
    # inlined into the message for the agent; larger or binary ones are described.
    file_max_bytes: int = 100_000

    def is_enabled(self) -> bool:
        return self.bot_token is not None or self.client_id is not None
