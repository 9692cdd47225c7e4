"""Slack: slack-bolt (HTTP Events API or Socket Mode) in, threaded Markdown replies out."""

from adapters.slack.app import SlackAdapter, create_adapter

__all__ = ["SlackAdapter", "create_adapter"]
