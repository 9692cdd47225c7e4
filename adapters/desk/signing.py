"""HMAC-SHA256 signatures over `{timestamp}.{raw body}`, used in both directions."""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from starlette.datastructures import Headers

from bridge.guard import BadSignature as Refused
from bridge.guard import Verifier

TIMESTAMP_HEADER = "X-Desk-Timestamp"
SIGNATURE_HEADER = "X-Desk-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    """The request is not signed by the shared secret, or not recently."""


class SignatureCheck(Protocol):
    """A desk's `verify`: raise `BadSignature` unless `signature` signs `body` near `now`."""

    def __call__(
        self, secret: str, *, timestamp: str | None, signature: str | None, body: bytes, now: float
    ) -> None: ...


def guard_verifier(
    check: SignatureCheck, secret: str, *, desk: str, timestamp_header: str, signature_header: str
) -> Verifier:
    """`check` as the ingress guard's verifier, run on the raw bytes before anything parses
    them (one for the desk, Zendesk and Chatwoot webhooks); an empty secret verifies nothing."""

    def verifier(headers: Headers, body: bytes, now: float) -> None:
        if not secret:
            raise Refused(f"no {desk} signing secret configured")
        try:
            check(
                secret,
                timestamp=headers.get(timestamp_header),
                signature=headers.get(signature_header),
                body=body,
                now=now,
            )
        except BadSignature as exc:
            raise Refused(str(exc)) from None

    return verifier


def require_headers(
    timestamp: str | None, signature: str | None, timestamp_header: str, signature_header: str
) -> tuple[str, str]:
    if not timestamp or not signature:
        raise BadSignature(f"missing {timestamp_header} or {signature_header} header")
    return timestamp.strip(), signature.strip()


def check_window(sent_at: float, now: float, tolerance: int, header: str) -> None:
    """The replay window: a signed request older (or newer) than `tolerance` seconds is refused."""
    if abs(now - sent_at) > tolerance:
        raise BadSignature(f"{header} is more than {tolerance}s away from now")


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
    timestamp, signature = require_headers(timestamp, signature, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise BadSignature(f"{TIMESTAMP_HEADER} is not unix seconds") from None
    check_window(sent_at, now, tolerance, TIMESTAMP_HEADER)
    expected = sign(secret, sent_at, body)
    candidates = [part.strip() for part in signature.split(",")]
    # Compare every candidate in constant time, without short-circuiting on the first match.
    matches = [hmac.compare_digest(expected.encode(), c.encode()) for c in candidates]
    if not any(matches):
        raise BadSignature("signature does not match")
