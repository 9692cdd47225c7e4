"""engage-bridge: Engage Smarter AI agents in Slack, Discord and support-desk threads."""

__version__ = "0.1.0"
