"""Zendesk webhook signatures: base64(HMAC-SHA256(secret, timestamp + raw body)), ISO timestamps."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from adapters.desk.signing import BadSignature, check_window, require_headers

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise `BadSignature` unless `signature` signs `body` at a `timestamp` near `now`.

    The timestamp is ISO 8601 (`2021-03-25T05:09:27Z`) and is signed as sent, so a replay
    outside the window cannot be refreshed without the secret.
    """
    timestamp, signature = require_headers(timestamp, signature, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    try:
        sent_at = datetime.fromisoformat(timestamp)
    except ValueError:
        raise BadSignature(f"{TIMESTAMP_HEADER} is not an ISO 8601 time") from None
    if sent_at.tzinfo is None:
        raise BadSignature(f"{TIMESTAMP_HEADER} has no time zone")
    check_window(sent_at.timestamp(), now, tolerance, TIMESTAMP_HEADER)
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise BadSignature("signature does not match")
