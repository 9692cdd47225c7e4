"""Signed cookies: which playground visitor a browser is, and whether it holds the operator token.

The signing key is one random secret kept in Redis (SET NX), not in a data-dir file: every
ingress replica signs and checks with it (per-pod data dirs would reject each other's cookies),
and it survives restarts with the Redis data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from bridge.codec import text
from bridge.inbox import storage
from bridge.store import Namespace, RedisClient

VISITOR_COOKIE = "eb_visitor"
OPERATOR_COOKIE = "eb_operator"
SECRET_KEY = Namespace("web").shared("secret")
"""No TTL: rotating it (DEL) signs every visitor and operator out."""
OPERATOR_SECONDS = 12 * 3600
"""An operator signs in again each working day; a stolen cookie outlives that by nothing."""


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:40]

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, signed: str) -> str | None:
        value, _, mac = signed.rpartition(".")
        return value if value and hmac.compare_digest(mac, self._mac(value)) else None


async def load_secret(redis: RedisClient) -> bytes:
    async with storage("web session secret"):
        await redis.set(SECRET_KEY, secrets.token_hex(32), nx=True)
        return text(await redis.get(SECRET_KEY)).encode()


class Sessions:
    def __init__(self, redis: RedisClient, token: SecretStr | None, *, visitor_seconds: int):
        self._redis = redis
        self._token = token.get_secret_value() if token is not None else None
        self._visitor_seconds = visitor_seconds
        self._signer: Signer | None = None

    @property
    def has_token(self) -> bool:
        return self._token is not None

    async def signer(self) -> Signer:
        if self._signer is None:  # two first requests racing both read the same stored secret
            self._signer = Signer(await load_secret(self._redis))
        return self._signer

    def token_matches(self, given: str) -> bool:
        return self._token is not None and hmac.compare_digest(given.encode(), self._token.encode())

    def _operator_value(self, expires: int) -> str:
        # Bound to the token, so changing ENGAGE_BRIDGE_WEB_TOKEN signs every operator out.
        assert self._token is not None
        fingerprint = hashlib.sha256(self._token.encode()).hexdigest()[:16]
        return f"op-{expires}-{fingerprint}"

    async def is_operator(self, request: Request) -> bool:
        cookie = request.cookies.get(OPERATOR_COOKIE)
        if self._token is None or not cookie:
            return False
        value = (await self.signer()).unsign(cookie)
        expires = value.split("-")[1] if value and value.count("-") == 2 else ""
        return (
            expires.isdigit()
            and int(expires) > time.time()
            and value == self._operator_value(int(expires))
        )

    async def sign_in(self, response: Response, request: Request) -> None:
        value = self._operator_value(int(time.time()) + OPERATOR_SECONDS)
        cookie = (await self.signer()).sign(value)
        _set(response, request, OPERATOR_COOKIE, cookie, OPERATOR_SECONDS)

    def sign_out(self, response: Response) -> None:
        response.delete_cookie(OPERATOR_COOKIE, path="/", httponly=True, samesite="strict")

    async def visitor(self, request: Request) -> str | None:
        cookie = request.cookies.get(VISITOR_COOKIE)
        return (await self.signer()).unsign(cookie) if cookie else None

    async def new_visitor(self) -> tuple[str, str]:
        """A fresh visitor id and its signed cookie value."""
        visitor = secrets.token_urlsafe(16).replace(".", "_")
        return visitor, (await self.signer()).sign(visitor)

    def remember_visitor(self, response: Response, request: Request, cookie: str) -> None:
        _set(response, request, VISITOR_COOKIE, cookie, self._visitor_seconds)


def _set(response: Response, request: Request, name: str, value: str, seconds: int) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        name, value, max_age=seconds, path="/", secure=secure, httponly=True, samesite="strict"
    )
