"""Deterministic body mutators for the route fuzz test: random, byte-level and JSON-tree changes."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# Values that break naive handlers: wrong types, huge or empty, surrogates, pings, near-ids.
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**70, 1.5, float("inf"), "", "x", "\ud800", "\x00", "<!everyone>",
    "a" * 5000, [], {}, [None], [[[[]]]], {"id": None}, {"": {}}, "1712345.0001", "U0001",
    "C0001", "D1", "im", "message", "app_mention", "event_callback", "block_actions",
    "url_verification", "ticket.created", "message_created", "staff", "resolve", "reset",
]  # fmt: skip

# Whole bodies that each parser must refuse cleanly.
SPECIAL_BODIES: list[bytes] = [
    b"", b"null", b"[]", b"[1]", b'"s"', b"1e999", b"NaN", b"{", b"}", b'{"a":}',
    b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe\x00", b"\xef\xbb\xbf{}", b"1" * 5000,
    b"payload=%7B", b"payload=%5B1%5D", b"payload=null", b"payload=" + b"%5B" * 3000,
    b"a=1&" * 1500, b'{"\\ud800": "\\udfff"}', b"\x00" * 64,
]  # fmt: skip

# Path segments and query values for GET routes ("@" in a template is replaced by one).
ODD_SEGMENTS: list[str] = [
    "", "0", "-1", "99999999999999999999", "1e9", "NaN", "%00", "%ff", "%ed%a0%80", "..",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "a" * 3000, "%25", "%zz", "[]", "{}", "%7B%7D",
    "slack:T1:C1:1.1", "web:playground:local:abcd", "%7Bx%7D:conv", "%3Cscript%3E", "true",
    "a%20b", "%0d%0aX-Injected:%201", "\u0000",
]  # fmt: skip

CONTENT_TYPES = [JSON, FORM, "text/plain", "", "multipart/form-data; boundary=x", "application/xml"]

Signer = Callable[[bytes], dict[str, str]]


@dataclass
class Target:
    """One POST route: a valid sample body, how to sign it, and its usual content type."""

    name: str
    path: str
    sample: dict[str, Any] | list[Any]
    content_type: str = JSON
    sign: Signer | None = None
    form: bool = False  # sample is a flat dict sent url-encoded
    form_payload: bool = False  # sample goes JSON-encoded in the form field `payload`
    extra_headers: dict[str, str] = field(default_factory=dict)

    def encode(self, value: Any) -> bytes:
        if self.form_payload:
            return urlencode({"payload": json.dumps(value)}).encode()
        if self.form:
            flat = value if isinstance(value, dict) else {"v": value}
            return urlencode({str(k): _text(v) for k, v in flat.items()}).encode()
        return json.dumps(value).encode()


@dataclass(frozen=True)
class Case:
    target: Target
    body: bytes
    content_type: str
    signed: bool
    how: str


def _text(value: Any) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    # Lone surrogates too: a fuzzer sends what a strict encoder would refuse.
    return text.encode("utf-8", "surrogatepass")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def tweak_tree(rng: random.Random, sample: Any) -> Any:
    """A copy of `sample` with one node replaced, removed, or given an extra key."""
    value = copy.deepcopy(sample)
    paths = [p for p in _paths(value) if p]
    if not paths:
        return {rng.choice(["type", "text", "id", "payload"]): rng.choice(ODD_VALUES)}
    path = rng.choice(paths)
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    action = rng.random()
    if action < 0.7:
        parent[path[-1]] = rng.choice(ODD_VALUES)
    elif action < 0.85:
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[rng.choice(["type", "event", "text", "id", "payload", "user"])] = rng.choice(
            ODD_VALUES
        )
    return value


def tweak_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw or b"{}")
    action = rng.randrange(4)
    at = rng.randrange(len(data))
    if action == 0:
        return bytes(data[:at])
    if action == 1:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if action == 2:
        return bytes(data[:at] + rng.randbytes(rng.randint(1, 32)) + data[at:])
    return bytes(data[:at] + data[at:] * rng.randint(2, 4))


def cases(rng: random.Random, target: Target, count: int) -> Iterator[Case]:
    """`count` cases for `target`: mostly signed (so they reach the parsers), some unsigned."""
    valid = target.encode(target.sample)
    for n in range(count):
        kind = n % 10
        content_type = target.content_type
        if kind in (0, 1, 2, 3):
            body, how = target.encode(tweak_tree(rng, target.sample)), "tree"
        elif kind in (4, 5):
            body, how = tweak_bytes(rng, valid), "bytes"
        elif kind == 6:
            body, how = rng.choice(SPECIAL_BODIES), "special"
        elif kind == 7:
            body, how = rng.randbytes(rng.randint(0, 2048)), "random"
        elif kind == 8:
            body, how = valid, "content-type"
            content_type = rng.choice(CONTENT_TYPES)
        else:
            body, how = target.encode(tweak_tree(rng, tweak_tree(rng, target.sample))), "tree2"
        signed = target.sign is not None and rng.random() < 0.8
        yield Case(target, body, content_type, signed, how)
