"""Slack's settings: Slack's own names for the credentials, `ENGAGE_BRIDGE_SLACK_*` the rest."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.platforms import PlatformSettings

# The manifest's bot scopes (deploy/slack-app-manifest.yaml); an install asks for all of them.
DEFAULT_SCOPES = (
    "app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history",
    "chat:write", "reactions:write", "reactions:read", "commands", "assistant:write",
    "usergroups:read", "channels:read", "groups:read", "im:read", "mpim:read", "files:read",
)  # fmt: skip


class SlackOAuthSettings(BaseSettings):
    """OAuth mode (instead of one `SLACK_BOT_TOKEN`): the app is installed into workspaces
    through `/slack/install`. `SLACK_CLIENT_ID` (SlackSettings.client_id, the adapter switch)
    turns it on; SlackSettings reads these with it (`SlackSettings.oauth`)."""

    model_config = SettingsConfigDict(env_prefix="SLACK_", env_file=".env", extra="ignore")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: list[str] = list(DEFAULT_SCOPES)
    # Must match a Redirect URL of the app; default: ENGAGE_BRIDGE_PUBLIC_URL + REDIRECT_PATH.
    redirect_uri: str | None = None

    @property
    def enabled(self) -> bool:
        return self.client_id is not None


class SlackSettings(PlatformSettings):
    """Read with the core's `Settings` (`settings.platform(SlackSettings)`); tests pass theirs."""

    platform: ClassVar[str] = "slack"
    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_SLACK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Enabled when a bot token is set (one workspace) or a client id (OAuth: many workspaces;
    # the rest of its settings are SlackOAuthSettings, read along: `oauth`). Socket Mode
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

    _oauth: SlackOAuthSettings = PrivateAttr()

    def __init__(self, oauth: SlackOAuthSettings | None = None, **values: Any) -> None:
        """`oauth`: given instead of read (tests); read from the same `_env_file` otherwise."""
        super().__init__(**values)
        env_file = {"_env_file": values["_env_file"]} if "_env_file" in values else {}
        self._oauth = oauth or SlackOAuthSettings(client_id=self.client_id, **env_file)

    @property
    def oauth(self) -> SlackOAuthSettings:
        return self._oauth

    def is_enabled(self) -> bool:
        return self.bot_token is not None or self.client_id is not None
