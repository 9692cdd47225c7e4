"""Slack-only settings (`ENGAGE_BRIDGE_SLACK_*`), kept out of the core's configuration."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SlackSettings(BaseSettings):
    """Built once by `create_adapter` (tests pass their own); tokens stay in `Settings`."""

    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_SLACK_", env_file=".env", extra="ignore"
    )

    # Agent text never pings a channel, `@here` or a user group. `<@U123>` user mentions are
    # neutralised too unless this is on (an agent that is told user ids may then ping them).
    user_mentions: bool = False
    # Suggested prompts shown when someone opens the assistant (at most four); empty: one
    # built from the routed agent's description.
    suggested_prompts: list[str] = []
    # Text-like files up to this size are read (with the bot token, scope files:read) and
    # inlined into the message for the agent; larger or binary ones are described.
    file_max_bytes: int = 100_000
