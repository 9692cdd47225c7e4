"""Structured logging: key=value or JSON lines, message content only on request, secrets never.

Code logs with stdlib loggers and puts facts in `extra`, e.g.
`log.info("turn done", extra={"thread_key": str(key), "conversation_id": cid, "agent_ms": 812})`
(`thread` itself is taken: LogRecord uses it for the OS thread id).
Fields named in `CONTENT_FIELDS` carry user or agent text and are dropped unless
`settings.log_content` is on.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import SecretStr

from bridge.config import Settings
from bridge.errors import ConfigError

CONTENT_FIELDS = frozenset({"content", "text", "message_text", "reply_text"})
REDACTED = "[redacted]"

# Token shapes worth hiding even when the value is not one of our own configured secrets.
_TOKEN_PATTERNS = re.compile(
    r"xox[abposer]-[A-Za-z0-9-]{8,}"  # Slack bot/user/... tokens
    r"|xapp-[A-Za-z0-9-]{8,}"  # Slack app-level tokens
    r"|(?i:(?:x-api-key|authorization|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
)
# Attributes every LogRecord has; anything else came from `extra` and is printed as a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "aiohttp.access")
LIBRARY_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "discord",
    "aiohttp",
    "websockets",
    "uvicorn",
    "starlette",
    "redis",
    "asyncio",
)
MANAGED_LOGGERS = QUIET_LOGGERS + LIBRARY_LOGGERS  # what configure_logging sets (tests restore)
OWN_PACKAGES = frozenset({"bridge", "adapters", "__main__"})


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret's value (SecretStr fields), to be masked wherever it appears."""
    values = []
    for section in (settings, *settings.platforms()):
        for name in type(section).model_fields:
            value = getattr(section, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                if len(raw) >= 4:  # masking 1-3 characters would garble ordinary text
                    values.append(raw)
    return values


# Every _TOKEN_PATTERNS match contains one of these (lower-cased): most lines skip the regex.
_TOKEN_HINTS = ("xox", "xapp-", "x-api-key", "authorization", "token", "secret", "password")
_TOKEN_HINT = re.compile("|".join(re.escape(hint) for hint in _TOKEN_HINTS))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    if _TOKEN_HINT.search(text.lower()) is None:
        return text

    def mask(match: re.Match[str]) -> str:
        whole = match.group(0)
        # Keep the "token=" prefix so the line still says what was hidden.
        prefix = re.match(r"(?i)[^:=]*[:=]\s*[\"']?", whole)
        if prefix and prefix.end() < len(whole):
            return whole[: prefix.end()] + REDACTED
        return REDACTED

    return _TOKEN_PATTERNS.sub(mask, text)


_QUOTED = re.compile('[ ="\n]')  # a value with one of these is written as a JSON string


def _format_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or _QUOTED.search(text) is not None:
        return json.dumps(text)
    return text


class BridgeFormatter(logging.Formatter):
    """One line per record: `ts level logger msg key=value...` or a JSON object."""

    def __init__(
        self, *, as_json: bool = False, log_content: bool = False, secrets: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self.as_json = as_json
        self.log_content = log_content
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted(set(secrets), key=len, reverse=True)
        # Not printed as fields: LogRecord's own attributes, uvicorn's coloured duplicate of
        # msg, and unless asked for, message content.
        self._not_fields = _STANDARD_ATTRS | {"color_message"}
        if not log_content:
            self._not_fields |= CONTENT_FIELDS

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        skip = self._not_fields
        return {k: v for k, v in vars(record).items() if k not in skip}

    def format(self, record: logging.LogRecord) -> str:
        timestamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        fields = self.fields(record)
        exc = self.formatException(record.exc_info) if record.exc_info else None
        if self.as_json:
            entry: dict[str, Any] = {
                "ts": timestamp,
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
                **fields,
            }
            if exc:
                entry["exc"] = exc
            line = json.dumps(entry, default=str)
        else:
            parts = [timestamp, record.levelname.lower(), record.name, record.getMessage()]
            parts += [f"{k}={_format_value(v)}" for k, v in fields.items()]
            line = " ".join(parts) + (f"\n{exc}" if exc else "")
        return redact(line, self.secrets)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Install one handler on the root logger (replacing earlier ones from us); return it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        BridgeFormatter(
            as_json=settings.log_json,
            log_content=settings.log_content,
            secrets=secret_values(settings),
        )
    )
    handler.set_name("engage-bridge")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "engage-bridge"]:
        root.removeHandler(old)
    try:
        root.setLevel(settings.log_level.upper())
    except ValueError as exc:
        raise ConfigError(f"ENGAGE_BRIDGE_LOG_LEVEL: {exc}") from exc
    root.addHandler(handler)
    debug = root.level <= logging.DEBUG
    # Libraries' DEBUG lines carry payloads (slack_sdk logs every request's `markdown_text`,
    # discord.py every gateway event): without log_content they stop at INFO, twice over (the
    # levels spare formatting them; the filter catches a library that sets its own level).
    content_ok = settings.log_content
    if not content_ok:
        handler.addFilter(library_debug_filter)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if debug and not content_ok else 0)
    for name in QUIET_LOGGERS:
        # Per-request lines (with full URLs) are noise at INFO; keep them for DEBUG runs.
        quiet = (logging.DEBUG if content_ok else logging.INFO) if debug else logging.WARNING
        logging.getLogger(name).setLevel(quiet)
    return handler


def library_debug_filter(record: logging.LogRecord) -> bool:
    """Keep a DEBUG record only when it comes from our own packages."""
    return record.levelno >= logging.INFO or record.name.split(".", 1)[0] in OWN_PACKAGES
