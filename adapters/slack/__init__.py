"""Slack: slack-bolt (HTTP Events API or Socket Mode) in, threaded Markdown replies out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.slack.app import SlackAdapter, create_adapter

__all__ = ["SlackAdapter", "create_adapter"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the settings (adapters.slack.settings) are read for every
    # configuration, slack_bolt only where Slack is switched on.
    if name in __all__:
        from adapters.slack import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
