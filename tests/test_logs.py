"""Structured log lines: fields, content only on request, secrets never."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.slack.settings import SlackSettings
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.logs import (
    MANAGED_LOGGERS,
    REDACTED,
    BridgeFormatter,
    configure_logging,
    redact,
    secret_values,
)


def _record(msg: str, *args: object, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("bridge.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    # configure_logging() changes the root logger and the quiet ones: leave them as found.
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in MANAGED_LOGGERS)]
    handlers, levels = list(loggers[0].handlers), [lg.level for lg in loggers]
    yield
    loggers[0].handlers[:] = handlers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_key_value_line_carries_the_extra_fields() -> None:
    line = BridgeFormatter().format(
        _record("turn done", thread_key="slack:T1:C1:1.2", conversation_id="c-1", agent_ms=812)
    )
    assert "info bridge.test turn done" in line
    assert "thread_key=slack:T1:C1:1.2" in line
    assert "conversation_id=c-1" in line
    assert "agent_ms=812" in line


def test_values_with_spaces_are_quoted() -> None:
    line = BridgeFormatter().format(_record("x", reason="not a mention"))
    assert 'reason="not a mention"' in line


def test_json_line_is_one_object_with_the_fields() -> None:
    line = BridgeFormatter(as_json=True).format(_record("hello %s", "world", thread_key="t"))
    entry = json.loads(line)
    assert entry["msg"] == "hello world"
    assert entry["thread_key"] == "t"
    assert entry["level"] == "info"


def test_message_content_is_dropped_unless_content_logging_is_on() -> None:
    record = _record("inbound", thread_key="t", text="my pension number is 42")
    assert "pension number" not in BridgeFormatter().format(record)
    assert "pension number" in BridgeFormatter(log_content=True).format(record)


def test_configured_secrets_never_appear() -> None:
    slack = SlackSettings(_env_file=None, bot_token=SecretStr("xoxb-123-secret-value"))
    settings = Settings(
        [slack],
        _env_file=None,
        engage_api_key=SecretStr("es-key-abcdef"),
    )
    assert "xoxb-123-secret-value" in secret_values(settings)  # an adapter's secrets too
    formatter = BridgeFormatter(secrets=secret_values(settings))
    line = formatter.format(_record("calling with es-key-abcdef", header="es-key-abcdef"))
    assert "es-key-abcdef" not in line
    assert REDACTED in line


def test_token_shapes_are_masked_even_when_not_configured() -> None:
    text = redact("token=abc123 then xoxb-1111-2222-abcdefgh and X-Api-Key: k-99", [])
    assert "abc123" not in text
    assert "xoxb-1111" not in text
    assert "k-99" not in text
    assert "token=" in text


def test_exceptions_are_redacted_too() -> None:
    try:
        raise RuntimeError("auth failed for secret-token-value")
    except RuntimeError:
        record = logging.LogRecord(
            "b", logging.ERROR, __file__, 1, "boom", None, __import__("sys").exc_info()
        )
    line = BridgeFormatter(secrets=["secret-token-value"]).format(record)
    assert "RuntimeError" in line
    assert "secret-token-value" not in line


@pytest.mark.usefixtures("restore_root_logger")
def test_configure_logging_writes_structured_lines_to_the_stream() -> None:
    stream = io.StringIO()
    settings = Settings(_env_file=None, log_json=True, log_level="debug")  # type: ignore[call-arg]
    configure_logging(settings, stream)
    configure_logging(settings, stream)  # twice: still one handler
    logging.getLogger("bridge.x").debug("ready", extra={"port": 8080})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["port"] == 8080


@pytest.mark.usefixtures("restore_root_logger")
def test_unknown_log_level_is_a_config_error() -> None:
    settings = Settings(_env_file=None, log_level="chatty")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        configure_logging(settings, io.StringIO())
