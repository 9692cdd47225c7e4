"""slack_sdk's AsyncWebClient with its per-call work done once per client (same wire bytes)."""

from __future__ import annotations

import json as jsonlib
import logging
from collections.abc import Iterable
from typing import Any, cast

import aiohttp
from aiohttp import FormData
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.web.deprecation import show_deprecation_warning_if_any
from slack_sdk.web.internal_utils import (
    _build_unexpected_body_error_message,
    _get_headers,
    _get_url,
)

from bridge.http1 import Answer, Http1

# slack_sdk's own handlers and the responses each may retry (none: errors only); a handler
# that says so itself (`retried_statuses`) is taken at its word, any other is asked every time.
_BUILTIN_STATUSES: dict[type[AsyncRetryHandler], frozenset[int]] = {
    AsyncConnectionErrorRetryHandler: frozenset(),
    AsyncRateLimitErrorRetryHandler: frozenset({429}),
    AsyncServerErrorRetryHandler: frozenset({500, 503}),
}
# slack_sdk's bound on the tries of one call, whatever the handlers say.
_MAX_TRIES = 100


class LevelAwareLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose `level` is the effective one.

    slack_sdk decides whether to format a call's two debug lines (the request's arguments, the
    response's headers and body) with `logger.level <= DEBUG`; its own module logger is left at
    NOTSET (0), so every call formatted both lines only for logging to drop them (~10 µs a call).
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, None)

    @property
    def level(self) -> int:
        return self.logger.getEffectiveLevel()

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs


class LeanWebClient(AsyncWebClient):
    """A JSON POST (what every write method of slack_sdk sends) goes out with the headers and
    URL built once: slack_sdk's `api_call` rebuilds both on every call (urljoin, the user agent,
    the header merge) and checks the method against its deprecated prefixes. Every other call
    (forms, GETs, files, a token or headers per call, a client with default params) takes
    slack_sdk's own path. Every call's request loop asks the retry handlers only about outcomes
    they may retry (`_request`); the response object and its checks are slack_sdk's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._json_headers: tuple[str | None, dict[str, str]] | None = None
        self._urls: dict[str, str] = {}
        # Kept-alive connections for JSON POSTs (bridge.http1), set with the session by its
        # owner (adapters.slack.clients.open_session); None: aiohttp for every call.
        self.http1: Http1 | None = None

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[Any, Any] | None = None,
        data: dict[Any, Any] | FormData | None = None,
        params: dict[Any, Any] | None = None,
        json: dict[Any, Any] | None = None,
        headers: dict[Any, Any] | None = None,
        auth: dict[Any, Any] | None = None,
    ) -> AsyncSlackResponse:
        lean = (
            json is not None
            and http_verb == "POST"
            and files is None
            and data is None
            and params is None
            and not headers
            and auth is None
            and "token" not in json
            and not self.default_params
        )
        if not lean:
            return await super().api_call(
                api_method, http_verb=http_verb, files=files, data=data, params=params,
                json=json, headers=headers, auth=auth,
            )  # fmt: skip
        url = self._urls.get(api_method)
        if url is None:
            show_deprecation_warning_if_any(api_method)
            url = self._urls[api_method] = _get_url(self.base_url, api_method)
        req_args = {
            "headers": self._headers_for_json(),
            "data": None,
            "files": None,
            "params": None,
            "json": json,
            "ssl": self.ssl,
            "proxy": self.proxy,
            "auth": None,
        }
        return await self._send(http_verb="POST", api_url=url, req_args=req_args)

    def _headers_for_json(self) -> dict[str, str]:
        """What `api_call` would build for a JSON body, for the client's current token."""
        cached = self._json_headers
        if cached is None or cached[0] != self.token:
            merged = dict(self.headers)
            built = _get_headers(
                headers=merged,
                token=self.token,
                has_json=True,
                has_files=False,
                request_specific_headers=merged,
            )
            cached = self._json_headers = (self.token, built)
        return cached[1]

    async def _request(
        self, *, http_verb: str, api_url: str, req_args: dict[str, Any]
    ) -> dict[str, Any]:
        """slack_sdk's request loop (`_request_with_session`) with its retry handlers asked only
        about an outcome one of them may retry: a failure, or a status in their
        `retried_statuses`. An answer no handler retries goes back as it came (slack_sdk
        builds the retry view of every request and response, and awaits each handler, per
        call). Without a session (slack_sdk opens one per call), with debug logging (its
        request and response lines) or with a handler that does not say what it retries, it
        is slack_sdk's own loop."""
        session = self.session
        statuses = retried_statuses(self.retry_handlers or ())
        debug = self._logger.level <= logging.DEBUG
        if session is None or session.closed or statuses is None or debug:
            return await super()._request(http_verb=http_verb, api_url=api_url, req_args=req_args)
        http1 = self.http1 if _plain_json_post(http_verb, req_args, self.proxy) else None
        state: RetryState | None = None
        request: HttpRequest | None = None
        last_error: Exception | None = None
        for _ in range(_MAX_TRIES):
            response: HttpResponse | None = None
            try:
                if http1 is not None:
                    got = await http1.post_json(api_url, req_args["headers"], req_args["json"])
                    data, response = await _read(got)
                    status, headers = got.status, got.headers
                else:
                    async with session.request(http_verb, api_url, **req_args) as res:
                        data, response = await _read(res)
                        status, headers = res.status, res.headers
            except Exception as error:
                last_error = error
                state = state or RetryState()
                request = request or _retry_view(http_verb, api_url, req_args)
                if await self._retried(state, request, response, error):
                    continue
                raise
            answer = {"data": data, "headers": headers, "status_code": status}
            if status not in statuses:
                return answer
            state = state or RetryState()
            request = request or _retry_view(http_verb, api_url, req_args)
            if response is None:  # a JSON answer
                response = HttpResponse(status_code=status, headers=cast(Any, headers), body=data)
            if not await self._retried(state, request, response, None):
                return answer
        assert last_error is not None
        raise last_error

    async def _retried(
        self,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None,
        error: Exception | None,
    ) -> bool:
        """The first handler that can retry this outcome prepares the next try (and waits)."""
        state.next_attempt_requested = False
        for handler in self.retry_handlers or ():
            if await handler.can_retry_async(
                state=state, request=request, response=response, error=error
            ):
                await handler.prepare_for_next_attempt_async(
                    state=state, request=request, response=response, error=error
                )
                break
        return state.next_attempt_requested


def retried_statuses(handlers: Iterable[AsyncRetryHandler]) -> frozenset[int] | None:
    """The response statuses any of `handlers` may retry; None when one of them does not say."""
    statuses: frozenset[int] = frozenset()
    for handler in handlers:
        known = getattr(handler, "retried_statuses", None)
        if known is None:
            known = _BUILTIN_STATUSES.get(type(handler))
        if known is None:
            return None
        statuses = statuses | known
    return statuses


def _plain_json_post(http_verb: str, req_args: dict[str, Any], proxy: str | None) -> bool:
    """A POST of a JSON body alone, without a proxy: what bridge.http1 sends as aiohttp would."""
    extra = ("data", "files", "params", "auth", "proxy")
    return (
        http_verb == "POST"
        and req_args.get("json") is not None
        and not proxy
        and not any(req_args.get(name) for name in extra)
        and set(req_args) <= _JSON_POST_ARGS
    )


_JSON_POST_ARGS = frozenset({"headers", "data", "files", "params", "json", "ssl", "proxy", "auth"})


async def _read(res: aiohttp.ClientResponse | Answer) -> tuple[Any, HttpResponse | None]:
    """The body as slack_sdk reads it (gzip and plain text as they come, else JSON), and its
    retry view where slack_sdk builds it on the way (a JSON answer's is built when asked)."""
    headers: Any = res.headers
    if res.content_type == "application/gzip":
        raw = await res.read()
        return raw, HttpResponse(status_code=res.status, headers=headers, data=raw)
    if res.content_type == "text/plain":
        text = await res.text()
        return text, HttpResponse(status_code=res.status, headers=headers, data=text)  # type: ignore[arg-type]
    try:
        return await res.json(), None
    except aiohttp.ContentTypeError:
        return {}, HttpResponse(status_code=res.status, headers=headers)
    except jsonlib.JSONDecodeError:
        # slack_sdk's own words: its first error is caught and wrapped in the second.
        try:
            message = _build_unexpected_body_error_message(await res.text())
            raise SlackApiError(message, res)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise SlackApiError(  # type: ignore[no-untyped-call]
                f"Unexpectedly failed to read the response body: {exc}", res
            ) from None


def _retry_view(http_verb: str, api_url: str, req_args: dict[str, Any]) -> HttpRequest:
    return HttpRequest(
        method=http_verb,
        url=api_url,
        headers=req_args.get("headers") or {},
        body_params=req_args.get("params"),
        data=req_args.get("data"),
    )
