"""Fixtures for the slack tests: a fake Slack on loopback and settings pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.config import Settings
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    yield slack
    await slack.aclose()


def slack_settings(slack: FakeSlack, *, socket_mode: bool = False, **overrides: Any) -> Settings:
    """Settings for a bridge whose Slack is `slack` (HTTP Events API, or Socket Mode)."""
    values: dict[str, Any] = {
        "slack_bot_token": slack.bot_token,
        "slack_signing_secret": slack.signing_secret,
        "slack_api_url": slack.api_url,
        "slack_app_token": slack.app_token if socket_mode else None,
        "config_file": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
