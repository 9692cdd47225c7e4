"""HMAC-SHA256 signatures over `{timestamp}.{raw body}`, used in both directions."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Desk-Timestamp"
SIGNATURE_HEADER = "X-Desk-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    """The request is not signed by the shared secret, or not recently."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Desk-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={digest.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


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

    The header may list several comma-separated `v1=` values so a secret can be rotated
    without downtime: one match is enough.
    """
    if not timestamp or not signature:
        raise BadSignature(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise BadSignature(f"{TIMESTAMP_HEADER} is not unix seconds") from None
    if abs(now - sent_at) > tolerance:
        raise BadSignature(f"{TIMESTAMP_HEADER} is more than {tolerance}s away from now")
    expected = sign(secret, sent_at, body)
    candidates = [part.strip() for part in signature.split(",")]
    # Compare every candidate in constant time, without short-circuiting on the first match.
    matches = [hmac.compare_digest(expected.encode(), c.encode()) for c in candidates]
    if not any(matches):
        raise BadSignature("signature does not match")
