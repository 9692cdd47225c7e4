"""`engage-bridge run` in a child process of a benchmark, with discord.py pointed at a fake Discord.

Run: python -m bench.bridge_process [run args...]; configured by the environment like the real
command. `BENCH_FAKE_DISCORD_URL` (http://host:port of tests/fakes/discord.py) makes discord.py's
REST base and gateway point at it, exactly as tests/fixtures_discord.py does in-process; the
bridge code itself is untouched.
"""

from __future__ import annotations

import os
import sys
import warnings


def point_discord_at(fake_url: str) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
        import discord.gateway
        import discord.http
    import yarl

    discord.http.Route.BASE = f"{fake_url}/api/v10"
    gateway = fake_url.replace("http://", "ws://", 1) + "/gw/"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def main() -> int:
    fake_discord = os.environ.get("BENCH_FAKE_DISCORD_URL")
    if fake_discord:
        point_discord_at(fake_discord)
    count_to = os.environ.get("BENCH_LOOP_COUNT")
    if count_to:
        from bench.loop_count import install

        install(count_to)
    trace_to = os.environ.get("BENCH_TURN_TRACE")
    if trace_to:
        from bench.turn_trace import install as install_trace

        install_trace(trace_to)
    from bridge.cli import main as cli_main

    return cli_main(["run", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
