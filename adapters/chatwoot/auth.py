"""Is a delivery from our Chatwoot? A secret URL token, Chatwoot's HMAC, a source allowlist.

Chatwoot signs agent-bot webhooks only from v4.13 on (`X-Chatwoot-Signature: sha256=<hex
HMAC-SHA256(bot secret, "<X-Chatwoot-Timestamp>.<raw body>")>`); older versions send nothing.
So the outgoing URL always carries a secret token (checked in constant time), the signature is
required once its secret is configured, and the source address can be limited to networks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence

from adapters.desk.signing import BadSignature, check_window, require_headers

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
TOLERANCE_SECONDS = 300


class Forbidden(ValueError):
    """Wrong URL token or a source address outside the allowlist."""


def check_token(expected: str, given: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("unknown webhook token")


def check_source(allowed: Sequence[str], address: str | None) -> None:
    if not allowed:
        return
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        raise Forbidden("source address unknown") from None
    if not any(ip in ipaddress.ip_network(net, strict=False) for net in allowed):
        raise Forbidden("source address not allowed")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    timestamp, signature = require_headers(timestamp, signature, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    if not timestamp.isdigit():
        raise BadSignature(f"{TIMESTAMP_HEADER} is not unix seconds")
    check_window(int(timestamp), now, tolerance, TIMESTAMP_HEADER)
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise BadSignature("signature does not match")
