"""What the fake Discord's REST answers look like on the wire: JSON bodies and error shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

Json = dict[str, Any]


@dataclass
class DiscordError(Exception):
    status: int
    code: int
    message: str
    errors: Json = field(default_factory=dict)

    def body(self) -> Json:
        return {"code": self.code, "message": self.message, "errors": self.errors}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def wire(message: Json) -> Json:
    """A message as Discord returns it (without the fake's bookkeeping fields)."""
    return {k: v for k, v in message.items() if k != "allowed_mentions"}


def rest_message(message: Json) -> Json:
    """A message as REST reads return it: `guild_id` and `member` come only with gateway events."""
    return {k: v for k, v in wire(message).items() if k not in ("guild_id", "member")}


def form_error(field_name: str, text: str) -> DiscordError:
    errors = {field_name: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": text}]}}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json".
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
