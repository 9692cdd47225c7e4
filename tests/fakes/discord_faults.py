"""What the fake Discord answers instead of the real route: 429s (forced, or from a per-channel
write bucket like Discord's) and broken answers (a proxy's truncated body)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.discord_wire import json_response

_CHANNEL = re.compile(r"/channels/(\d+)/")


@dataclass
class RateLimit:
    method: str
    path: re.Pattern[str]
    times: int
    retry_after: float


@dataclass
class Broken:
    """The next `times` matching requests get `status` with a body that is not what it says;
    `handled`: the request is carried out first (the message exists), only its answer is cut."""

    method: str
    path: re.Pattern[str]
    times: int
    status: int = 200
    body: bytes = b'{"truncated": '
    handled: bool = False


@dataclass
class Gate:
    """The next matching request waits here (arrived, not yet carried out) until `open()`: a
    request held at a known point, however slow the machine."""

    method: str
    path: re.Pattern[str]
    caught: bool = False
    waiting: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def open(self) -> None:
        self.opened.set()


@dataclass
class ChannelBucket:
    """Discord's per-channel bucket for message writes (POST/PATCH/DELETE): `limit` per `per`
    seconds, announced in X-RateLimit-* headers so a polite client never hits the 429."""

    limit: int
    per: float
    used: dict[str, list[float]] = field(default_factory=dict)
    rejected: int = 0


def rate_limited(retry_after: float, *, bucket: str = "fake") -> web.Response:
    return json_response(
        {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
        status=429,
        headers={"Via": "1.1 google", "Retry-After": str(retry_after),
                 "X-RateLimit-Scope": "user", "X-RateLimit-Bucket": bucket},
    )  # fmt: skip


def forced(
    limits: list[RateLimit], broken: list[Broken], method: str, path: str
) -> web.Response | None:
    for limit in limits:
        if limit.times > 0 and limit.method == method and limit.path.fullmatch(path):
            limit.times -= 1
            return rate_limited(limit.retry_after)
    return _broken(broken, method, path, handled=False)


def cut(broken: list[Broken], method: str, path: str) -> web.Response | None:
    """The broken answer to a request that was carried out, if one is due."""
    return _broken(broken, method, path, handled=True)


def _broken(broken: list[Broken], method: str, path: str, *, handled: bool) -> web.Response | None:
    for fault in broken:
        if fault.handled is not handled or fault.times <= 0:
            continue
        if fault.method == method and fault.path.fullmatch(path):
            fault.times -= 1
            return web.Response(
                body=fault.body, status=fault.status, headers={"Content-Type": "application/json"}
            )
    return None


def take(bucket: ChannelBucket | None, method: str, path: str) -> web.Response | dict[str, str]:
    """A 429, or the headers to add to the real answer (none when no bucket applies)."""
    match = _CHANNEL.match(path)
    if bucket is None or match is None or method == "GET" or "/messages" not in path:
        return {}
    now = time.monotonic()
    used = [t for t in bucket.used.get(match.group(1), []) if t > now - bucket.per]
    reset_after = (used[0] + bucket.per - now) if used else bucket.per
    if len(used) >= bucket.limit:
        bucket.rejected += 1
        return rate_limited(round(reset_after, 3), bucket=f"channel-{match.group(1)}")
    used.append(now)
    bucket.used[match.group(1)] = used
    reset_after = used[0] + bucket.per - now
    return {
        "X-RateLimit-Bucket": f"channel-{match.group(1)}",
        "X-RateLimit-Limit": str(bucket.limit),
        "X-RateLimit-Remaining": str(bucket.limit - len(used)),
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
    }
