"""slack_sdk's AsyncWebClient with its per-call work done once per client (same wire bytes)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import FormData
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.web.deprecation import show_deprecation_warning_if_any
from slack_sdk.web.internal_utils import _get_headers, _get_url


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
    slack_sdk's own path; the request itself, the retry handlers and the response are slack_sdk's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._json_headers: tuple[str | None, dict[str, str]] | None = None
        self._urls: dict[str, str] = {}

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
