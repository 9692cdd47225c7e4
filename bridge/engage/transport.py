"""HTTP for the Engage Smarter client: auth headers, retries, and httpx errors translated once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from bridge.backoff import parse_retry_after
from bridge.engage.errors import (
    EngageConnectError,
    EngageError,
    EngageProtocolError,
    EngageStatusError,
    EngageTimeoutError,
    EngageTransportError,
    OutcomeUnknown,
    RateLimited,
    status_error,
)
from bridge.engage.lean import Lean
from bridge.engage.retry import (
    Failure,
    OnRetry,
    RetryEvent,
    RetryPolicy,
    Safety,
    Verdict,
    next_delay,
    verdict,
)
from bridge.engage.streamed import HttpxStreamed, Streamed, lean_streamed
from bridge.engage.wire import Params, Spelt, Wire

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]

# What `Lean` sends: a parsed URL, or one spelt out as httpx spells it.
_LEAN_URLS = (httpx.URL, Spelt)
# Failing before a single byte could reach the server: safe to repeat anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def transport_failure(exc: httpx.TransportError) -> Failure:
    return Failure.NOT_SENT if isinstance(exc, _NOT_SENT) else Failure.NO_RESPONSE


def transport_error(exc: httpx.TransportError) -> EngageTransportError:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return EngageTimeoutError(f"Engage Smarter request timed out ({name})")
    if isinstance(exc, httpx.ConnectError):
        return EngageConnectError(f"cannot connect to Engage Smarter: {exc}")
    return EngageTransportError(f"Engage Smarter request failed ({name}): {exc}")


class Answer(Protocol):
    """What the client reads of a response: an `httpx.Response`, or a `lean.Reply`."""

    @property
    def status_code(self) -> int: ...
    @property
    def is_success(self) -> bool: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def response_error(response: Answer) -> EngageStatusError:
    """The status error for a non-2xx response whose body has been read."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail") if isinstance(body, dict) else body
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return status_error(response.status_code, detail, retry_after)


def status_failure(error: EngageStatusError) -> Failure:
    if isinstance(error, RateLimited):
        return Failure.RATE_LIMITED
    # 408: the server gave up on the request; like a 5xx, it may or may not have acted.
    if error.status_code >= 500 or error.status_code == 408:
        return Failure.SERVER_ERROR
    return Failure.REJECTED


class _SetCookiesOnly(httpx.Cookies):
    """Cookies taken from a response only when it sets some: httpx otherwise parses every
    response for them (a urllib Request and an email Message each: ~12 % of the client's CPU
    in a profile of create + chat), and the Engage API sets none."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class OwnedHttp(httpx.AsyncClient):
    """The `httpx.AsyncClient` an `EngageClient` builds for itself (an injected one is used as
    it is): the same client, without the per-response cookie parsing when there is none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar: httpx.Cookies = _SetCookiesOnly(kwargs.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _SetCookiesOnly(cookies)


@dataclass(frozen=True)
class Failed:
    """One failed attempt: the error to raise, its kind, and the httpx exception behind it."""

    error: EngageError
    failure: Failure
    cause: BaseException | None = None
    retry_after: float | None = None  # a 429's or 503's Retry-After, in seconds

    @classmethod
    def from_transport(cls, exc: httpx.TransportError) -> Failed:
        return cls(transport_error(exc), transport_failure(exc), exc)

    @classmethod
    def from_response(cls, response: Answer) -> Failed:
        error = response_error(response)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return cls(error, status_failure(error), retry_after=retry_after)


class EngageHttp:
    """Sends one logical request, repeating it only when `Safety` and the failure allow."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        http: httpx.AsyncClient,
        retry: RetryPolicy,
        on_retry: OnRetry | None = None,
        sleep: Sleep = asyncio.sleep,
        lean: Lean | None = None,
    ) -> None:
        """`lean`: sends what it takes of `http`'s requests without httpx's client layers."""
        self._wire = Wire(base_url, headers, http)
        self._http = http
        self._lean = lean
        self._retry = retry
        self._on_retry = on_retry
        self._sleep = sleep

    async def request(
        self,
        method: str,
        path: str,
        *,
        safety: Safety,
        params: Params | None = None,
        body: Any = None,
        unknown: type[OutcomeUnknown] = OutcomeUnknown,
    ) -> Any:
        """The response's JSON, after any retries; raises an `EngageError`."""
        attempt = 0
        while True:
            attempt += 1
            try:
                lean = self._lean
                url, kwargs = self._wire.args(path, params, body, spelt=lean is not None)
                response: Answer
                if lean is not None and isinstance(url, _LEAN_URLS) and lean.takes(kwargs):
                    response = await lean.request(method, url, kwargs)
                else:
                    response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                failed = Failed.from_transport(exc)
            else:
                if response.is_success:
                    return _json(response)
                failed = Failed.from_response(response)
            await self._after_failure(method, path, safety, unknown, attempt, failed)

    async def stream(
        self,
        method: str,
        path: str,
        *,
        safety: Safety,
        params: Params | None = None,
        body: Any = None,
        unknown: type[OutcomeUnknown] = OutcomeUnknown,
    ) -> AsyncIterator[dict[str, Any]]:
        """The message objects of an SSE response; a stream broken mid-way raises `unknown`."""
        attempt = 0
        while True:
            attempt += 1
            received = 0
            lean = self._lean
            url, kwargs = self._wire.args(path, params, body, stream=True, spelt=lean is not None)
            try:
                if lean is not None and isinstance(url, _LEAN_URLS) and lean.takes(kwargs):
                    streamed: Streamed = await lean_streamed(lean, method, url, kwargs)
                else:
                    streamed = HttpxStreamed(self._http.stream(method, url, **kwargs))
                async with streamed as response:
                    if response.is_success:
                        try:
                            async for payload in streamed.payloads():
                                received += 1
                                yield payload
                        except httpx.HTTPError as exc:
                            raise unknown(
                                f"the chat stream broke after {received} message(s): "
                                f"{type(exc).__name__}"
                            ) from exc
                        return
                    failed = Failed.from_response(await streamed.read())
            except httpx.TransportError as exc:
                failed = Failed.from_transport(exc)
            await self._after_failure(method, path, safety, unknown, attempt, failed)

    async def _after_failure(
        self,
        method: str,
        path: str,
        safety: Safety,
        unknown: type[OutcomeUnknown],
        attempt: int,
        failed: Failed,
    ) -> None:
        """Waits before the next attempt, or raises."""
        error, failure, cause = failed.error, failed.failure, failed.cause
        decision = verdict(safety, failure)
        if decision is Verdict.UNKNOWN:
            raise unknown(f"{method} {path} may or may not have taken effect: {error}") from (
                cause or error
            )
        delay = (
            next_delay(self._retry, attempt, failed.retry_after)
            if decision is Verdict.RETRY
            else None
        )
        if delay is None:
            raise error from cause
        log.warning(
            "engage %s %s failed (%s, attempt %d); retrying in %.2fs",
            method, path, failure.value, attempt, delay,
        )  # fmt: skip
        if self._on_retry is not None:
            self._on_retry(RetryEvent(method, path, attempt, failure, delay))
        await self._sleep(delay)


def _json(response: Answer) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise EngageProtocolError(
            f"Engage Smarter sent a {response.status_code} without a JSON body"
        ) from exc


def parse_one(model: type[M], payload: Any) -> M:
    """One response object as `model`; a shape the contract does not describe is an error."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise EngageProtocolError(
            f"unexpected {model.__name__} from Engage Smarter: {exc}"
        ) from exc


def parse_list(model: type[M], payload: Any) -> list[M]:
    if not isinstance(payload, list):
        raise EngageProtocolError(
            f"expected a list of {model.__name__}, got {type(payload).__name__}"
        )
    return [parse_one(model, item) for item in payload]


def page(limit: int, offset: int, reversed: bool, **extra: str | None) -> dict[str, str | int]:
    """Query parameters for a paginated search; booleans as `true`/`false`, None left out."""
    params: dict[str, str | int] = {"reversed": flag(reversed), "limit": limit, "offset": offset}
    params.update({key: value for key, value in extra.items() if value is not None})
    return params


def path_of(prefix: str, resource_id: str, *parts: str) -> str:
    """`prefix/{id}/parts...`, the ids percent-encoded so they cannot change the route."""
    return "/".join((prefix, *(quote(part, safe="") for part in (resource_id, *parts))))


def chat_params(agent: str, return_inputs: bool, *, stream: bool) -> dict[str, str]:
    """`agent` always; `return_inputs` and `stream` only when asked, as the official SDK does."""
    params = {"agent": agent}
    if return_inputs:
        params["return_inputs"] = flag(True)
    if stream:
        params["stream"] = flag(True)
    return params


def flag(value: bool) -> str:
    return "true" if value else "false"
