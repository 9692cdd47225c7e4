"""Desk signatures: HMAC-SHA256 over `{timestamp}.{body}`, a ±5 minute window, rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from adapters.desk.signing import BadSignature, sign, verify

NOW = 1_800_000_000


def test_signature_is_hmac_sha256_hex_over_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1800000000.{}", hashlib.sha256).hexdigest()
    assert sign("s3cret", NOW, b"{}") == f"v1={expected}"


def test_a_fresh_correct_signature_verifies() -> None:
    verify("k", timestamp=str(NOW), signature=sign("k", NOW, b"x"), body=b"x", now=NOW + 299)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "reason"),
    [
        (str(NOW), sign("other", NOW, b"x"), b"x", NOW, "does not match"),
        (str(NOW), sign("k", NOW, b"x"), b"y", NOW, "does not match"),
        (str(NOW), sign("k", NOW + 1, b"x"), b"x", NOW, "does not match"),
        (str(NOW), sign("k", NOW, b"x"), b"x", NOW + 301, "away from now"),
        (str(NOW), sign("k", NOW, b"x"), b"x", NOW - 301, "away from now"),
        ("soon", sign("k", NOW, b"x"), b"x", NOW, "unix seconds"),
        (None, sign("k", NOW, b"x"), b"x", NOW, "missing"),
        (str(NOW), None, b"x", NOW, "missing"),
        (str(NOW), "v0=" + sign("k", NOW, b"x")[3:], b"x", NOW, "does not match"),
    ],
)
def test_bad_or_stale_signatures_are_refused(
    timestamp: str | None, signature: str | None, body: bytes, now: int, reason: str
) -> None:
    with pytest.raises(BadSignature, match=reason):
        verify("k", timestamp=timestamp, signature=signature, body=body, now=now)


def test_any_of_several_signatures_may_match_during_secret_rotation() -> None:
    header = f"{sign('old', NOW, b'x')}, {sign('k', NOW, b'x')}"
    verify("k", timestamp=str(NOW), signature=header, body=b"x", now=NOW)
