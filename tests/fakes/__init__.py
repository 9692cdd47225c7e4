"""Local fake platform servers (Slack, Discord, desk callback) for tests over loopback."""
