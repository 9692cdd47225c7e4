"""Settings: read once, the adapters' own variables included, under their documented names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.desk.settings import DeskSettings
from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import SlackSettings
from adapters.web.settings import WebSettings
from adapters.zendesk.settings import ZendeskSettings
from bridge.config import Settings
from bridge.envnames import describe, env_names, unknown
from bridge.errors import ConfigError
from bridge.platforms import SETTINGS, settings_class

REPO = Path(__file__).resolve().parent.parent

# One variable per adapter section, with the value each must arrive as.
PLATFORM_VARIABLES = {
    "SLACK_BOT_TOKEN": "xoxb-from-the-environment",
    "ENGAGE_BRIDGE_SLACK_API_URL": "http://127.0.0.1:9/api/",
    "DISCORD_BOT_TOKEN": "discord-from-the-environment",
    "ENGAGE_BRIDGE_DISCORD_SHARD_IDS": "[0, 1]",
    "ENGAGE_BRIDGE_DESK_SIGNING_SECRET": "a-long-desk-signing-secret",
    "ENGAGE_BRIDGE_WEB_ENABLED": "false",
    "ZENDESK_WEBHOOK_SECRET": "a-long-zendesk-webhook-secret",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in PLATFORM_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def read(settings: Settings) -> dict[str, object]:
    slack = settings.platform(SlackSettings)
    discord = settings.platform(DiscordSettings)
    return {
        "SLACK_BOT_TOKEN": slack.bot_token and slack.bot_token.get_secret_value(),
        "ENGAGE_BRIDGE_SLACK_API_URL": slack.api_url,
        "DISCORD_BOT_TOKEN": discord.bot_token and discord.bot_token.get_secret_value(),
        "ENGAGE_BRIDGE_DISCORD_SHARD_IDS": discord.shard_ids,
        "ENGAGE_BRIDGE_DESK_SIGNING_SECRET": (
            secret.get_secret_value()
            if (secret := settings.platform(DeskSettings).signing_secret)
            else None
        ),
        "ENGAGE_BRIDGE_WEB_ENABLED": settings.platform(WebSettings).enabled,
        "ZENDESK_WEBHOOK_SECRET": (
            secret.get_secret_value()
            if (secret := settings.platform(ZendeskSettings).webhook_secret)
            else None
        ),
    }


EXPECTED = {
    **PLATFORM_VARIABLES,
    "ENGAGE_BRIDGE_DISCORD_SHARD_IDS": [0, 1],
    "ENGAGE_BRIDGE_WEB_ENABLED": False,
}


def test_every_adapter_section_is_read_with_the_core_settings_under_its_documented_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in PLATFORM_VARIABLES.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load()
    assert read(settings) == EXPECTED
    assert [p.platform for p in settings.platforms()] == list(SETTINGS)


def test_the_adapters_read_the_same_env_file_as_the_core(tmp_path: Path) -> None:
    env_file = tmp_path / "bridge.env"
    lines = [f"{name}={value}" for name, value in PLATFORM_VARIABLES.items()]
    env_file.write_text("\n".join([*lines, "ENGAGE_BRIDGE_HTTP_PORT=9999"]), encoding="utf-8")
    settings = Settings(_env_file=env_file)
    assert settings.http_port == 9999
    assert read(settings) == EXPECTED
    assert Settings(_env_file=None).platform(SlackSettings).bot_token is None


def test_given_adapter_settings_replace_the_ones_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    given = SlackSettings(_env_file=None, bot_token="xoxb-given-by-a-test")
    settings = Settings([given], _env_file=None)
    assert settings.platform(SlackSettings) is given
    # The others are still read, and a copy keeps them.
    copy = settings.model_copy(update={"http_port": 0})
    assert copy.platform(SlackSettings) is given
    assert copy.platform(WebSettings).enabled is True


def test_an_invalid_adapter_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_BRIDGE_DISCORD_SHARD_COUNT", "several")
    with pytest.raises(ConfigError, match="shard_count"):
        Settings.load()


def test_every_listed_settings_class_names_its_own_adapter() -> None:
    for name in SETTINGS:
        assert settings_class(name).platform == name


def test_reading_the_settings_loads_no_platform_sdk() -> None:
    probe = (
        "import sys\n"
        "from bridge.config import Settings\n"
        "Settings(_env_file=None)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk', "
        "'discord')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_every_engage_bridge_name_the_docs_and_deploy_files_use_is_read_by_a_setting() -> None:
    # The other side of the unknown-name warning: no documented variable is ever reported.
    sources = [REPO / "README.md", *sorted((REPO / "deploy").rglob("*.*"))]
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sources)
    names = set(re.findall(r"ENGAGE_BRIDGE_[A-Z0-9_]*[A-Z0-9]", text))
    settings = Settings(_env_file=None)
    known = env_names(Settings, *(type(p) for p in settings.platforms()))
    assert len(names) > 40
    assert unknown(names, known) == []


def test_unknown_names_come_from_the_environment_and_the_env_file_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in os.environ if n.upper().startswith("ENGAGE_BRIDGE_")]:
        monkeypatch.delenv(name)
    env_file = tmp_path / "bridge.env"
    env_file.write_text("ENGAGE_BRIDGE_WEB_TOKN=x\nENGAGE_BRIDGE_HTTP_PORT=9\n", encoding="utf-8")
    monkeypatch.setenv("ENGAGE_BRIDGE_NOTHING_LIKE_IT", "1")
    monkeypatch.setenv("ENGAGE_BRIDGE_DISCORD_SHARD_IDS", "[0]")  # an adapter's: known
    monkeypatch.setenv("ENGAGE_BRIDGE_SLACK_BOT_TOKEN", "xoxb-12345678")  # read too (by name)
    monkeypatch.setenv("SLACK_BOT_TOKN", "x")  # not ours to judge

    assert Settings(_env_file=env_file).unknown_variables() == [
        ("ENGAGE_BRIDGE_NOTHING_LIKE_IT", None),
        ("ENGAGE_BRIDGE_WEB_TOKN", "ENGAGE_BRIDGE_WEB_TOKEN"),
    ]
    assert Settings(_env_file=None).unknown_variables() == [("ENGAGE_BRIDGE_NOTHING_LIKE_IT", None)]
    assert "not a setting" in describe("ENGAGE_BRIDGE_NOTHING_LIKE_IT", None)
