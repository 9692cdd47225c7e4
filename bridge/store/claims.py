"""Once-only claims and the readiness write probe (keys and TTLs: bridge/store/keys.py)."""

from __future__ import annotations

from bridge.store import keys
from bridge.store.client import RedisClient
from bridge.store.errors import storage


async def claim_command(redis: RedisClient, platform: str, digest: str) -> bool:
    """True for the first delivery of a slash-command invocation (COMMAND_CLAIM_TTL_SECONDS)."""
    claim = keys.command_claim(platform, digest)
    async with storage("slash command claim"):
        return bool(await redis.set(claim, "1", nx=True, ex=keys.COMMAND_CLAIM_TTL_SECONDS))


async def write_probe(redis: RedisClient) -> None:
    """A tiny expiring write; Redis errors propagate untranslated (the caller times it)."""
    await redis.set(keys.READY_PROBE, b"1", px=keys.READY_PROBE_TTL_MS)
