"""Empty or too short secrets are refused at start and reported by `check`, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.desk.settings import DeskSettings
from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import SlackSettings
from bridge.config import Settings
from bridge.credentials import require_strong_secrets, secret_problems
from bridge.errors import ConfigError
from bridge.platforms import PlatformSettings
from bridge.runtime import BridgeRuntime
from tests.test_cli import clean_env, run_cli  # noqa: F401  (clean_env is a fixture)


def settings(*platforms: PlatformSettings, **values: object) -> Settings:
    return Settings(platforms, _env_file=None, **values)


def slack(**values: object) -> SlackSettings:
    return SlackSettings(_env_file=None, **values)  # type: ignore[arg-type]


def discord(**values: object) -> DiscordSettings:
    return DiscordSettings(_env_file=None, **values)  # type: ignore[arg-type]


def desk(**values: object) -> DeskSettings:
    return DeskSettings(_env_file=None, **values)  # type: ignore[arg-type]


def problems_of(settings: Settings) -> list[str]:
    """What start-up and `check` report: the core's secrets, then every adapter's."""
    return secret_problems(settings, *settings.platforms())


def test_no_secrets_and_real_looking_ones_pass() -> None:
    assert problems_of(settings()) == []
    strong = settings(
        slack(bot_token="xoxb-1234567890-abcdef", signing_secret="8f742231b10e8888abcd99yyyz85a5"),
        desk(signing_secret="a-long-shared-desk-secret"),
        discord(bot_token="MTA2.discord.token"),
        engage_api_key="emulator-key",
    )
    assert problems_of(strong) == []


def test_an_empty_secret_is_named_by_its_environment_variable() -> None:
    problems = problems_of(settings(desk(signing_secret=""), slack(signing_secret="  ")))
    assert problems == [
        "SLACK_SIGNING_SECRET is set but empty (unset it, or give the real value)",
        "ENGAGE_BRIDGE_DESK_SIGNING_SECRET is set but empty (unset it, or give the real value)",
    ]


def test_short_signing_secrets_and_tokens_are_refused() -> None:
    problems = problems_of(
        settings(slack(signing_secret="abc123"), discord(bot_token="x"), engage_api_key="key")
    )
    assert problems == [
        "ENGAGE_SMARTER_API_KEY is 3 characters; at least 8 are required",
        "SLACK_SIGNING_SECRET is 6 characters; at least 16 are required",
        "DISCORD_BOT_TOKEN is 1 characters; at least 8 are required",
    ]
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is 6 characters"):
        require_strong_secrets(*settings(slack(signing_secret="abc123")).platforms())


async def test_the_bridge_refuses_to_start_with_an_empty_desk_secret(tmp_path: Path) -> None:
    bad = settings(desk(signing_secret=""), http_port=0, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="ENGAGE_BRIDGE_DESK_SIGNING_SECRET is set but empty"):
        async with BridgeRuntime(bad):
            pass


@pytest.mark.usefixtures("clean_env")
def test_check_reports_an_empty_desk_secret_as_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_DESK_SIGNING_SECRET", "")
    code, out = run_cli("check")
    assert code == 1
    assert "FAIL configuration: ENGAGE_BRIDGE_DESK_SIGNING_SECRET is set but empty" in out
