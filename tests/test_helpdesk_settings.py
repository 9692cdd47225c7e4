"""Zendesk and Chatwoot settings: switched on by their own variables, refused when incomplete."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.chatwoot import ChatwootAdapter
from adapters.chatwoot.settings import ChatwootSettings
from adapters.web.settings import WebSettings
from adapters.zendesk import ZendeskAdapter
from adapters.zendesk.settings import ZendeskSettings
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.loader import enabled_adapter_names, load_adapter

ZENDESK_ENV = {
    "ZENDESK_WEBHOOK_SECRET": "zendesk-webhook-secret-1",
    "ZENDESK_URL": "https://acme.zendesk.com",
    "ZENDESK_EMAIL": "bot@acme.com",
    "ZENDESK_API_TOKEN": "zendesk-api-token",
    "ZENDESK_BOT_USER_ID": "900",
}
CHATWOOT_ENV = {
    "CHATWOOT_WEBHOOK_TOKEN": "chatwoot-url-token-123",
    "CHATWOOT_URL": "https://app.chatwoot.com",
    "CHATWOOT_BOT_TOKEN": "chatwoot-bot-token",
    "CHATWOOT_ALLOWED_SOURCES": '["10.0.0.0/8"]',
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in [*ZENDESK_ENV, *CHATWOOT_ENV, "CHATWOOT_WEBHOOK_SECRET"]:
        monkeypatch.delenv(name, raising=False)


def test_adapters_are_switched_on_by_their_own_variables(
    monkeypatch: pytest.MonkeyPatch, redis_client: aioredis.Redis
) -> None:
    no_web = WebSettings(enabled=False)
    assert enabled_adapter_names(Settings([no_web])) == []
    for name, value in {**ZENDESK_ENV, **CHATWOOT_ENV}.items():
        monkeypatch.setenv(name, value)
    settings = Settings([no_web])  # read once, where the entry point builds it
    assert enabled_adapter_names(settings) == ["zendesk", "chatwoot"]
    assert isinstance(load_adapter("zendesk", settings, redis_client), ZendeskAdapter)
    chatwoot = load_adapter("chatwoot", settings, redis_client)
    assert isinstance(chatwoot, ChatwootAdapter)
    assert ChatwootSettings().allowed_sources == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    ("missing", "weak", "problem"),
    [
        ("ZENDESK_URL", {}, "ZENDESK_URL"),
        ("ZENDESK_API_TOKEN", {}, "ZENDESK_API_TOKEN"),
        (None, {"ZENDESK_WEBHOOK_SECRET": "short"}, "ZENDESK_WEBHOOK_SECRET is 5 characters"),
    ],
)
def test_incomplete_or_weak_zendesk_settings_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch, missing: str | None, weak: dict[str, str], problem: str
) -> None:
    for name, value in {**ZENDESK_ENV, **weak}.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=problem):
        ZendeskAdapter(ZendeskSettings())


def test_short_chatwoot_url_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**CHATWOOT_ENV, "CHATWOOT_WEBHOOK_TOKEN": "abc123456"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="CHATWOOT_WEBHOOK_TOKEN"):
        ChatwootAdapter(ChatwootSettings())
