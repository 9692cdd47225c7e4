"""Slack's request signature: `v0=` HMAC-SHA256 of `v0:{timestamp}:{raw body}`, 5-minute window."""

from __future__ import annotations

import hashlib
import hmac

from starlette.datastructures import Headers

from bridge.guard import BadSignature, Verifier

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode("latin-1") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verifier(secret: str) -> Verifier:
    """A guard verifier for Slack's signing secret; an empty secret verifies nothing."""

    def verify(headers: Headers, body: bytes, now: float) -> None:
        if not secret:
            # Anyone can compute an HMAC with an empty key.
            raise BadSignature("no Slack signing secret configured")
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise BadSignature(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        if not timestamp.isdigit():
            raise BadSignature(f"{TIMESTAMP_HEADER} is not unix seconds")
        if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
            raise BadSignature(f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS}s from now")
        expected = sign(secret, timestamp, body).encode()
        if not hmac.compare_digest(expected, signature.encode("latin-1")):
            raise BadSignature("signature does not match")

    return verify
