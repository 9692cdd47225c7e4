"""What an Engage Smarter request carries (URL, headers, JSON body), prepared once where it can.

httpx's `build_request` merges a string URL with the params by parsing it up to three times
(~15 us each), merges headers through exception paths per missing key, and adds a JSON body's
headers the same way; a turn's create + chat spent ~100 us there (issue 13, BENCHMARKS.md). An
`httpx.URL` already holding its query passes through unparsed, headers the client already
sends need no merging, and a body encoded here is the same bytes httpx would send.

For the lean path (`bridge.engage.lean`) a URL of plain characters is spelt out as httpx would
spell it (`Spelt`), unparsed: a new conversation's chat URL, with its query, was a parse of
~23 us every turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

Params = Mapping[str, str | int]

# Parsed URLs kept per client: the create and list URLs, and a conversation's URLs for its
# follow-up turns; cleared whole when full.
_PARSED_URLS = 512
_EVENT_STREAM = {"Accept": "text/event-stream"}
# What httpx sends as it is: segments of unreserved characters and percent-escapes (`path_of`
# quotes ids so); no dots (httpx removes dot segments), no empty segments.
_PLAIN_PATH = re.compile(r"(?:/(?:[A-Za-z0-9_~-]|%[0-9A-F]{2})+)+")
_PLAIN_PARAM = re.compile(r"[A-Za-z0-9._~-]+")
_PROBE = ("/v1/probe/a%2Fb", {"agent": "x"})


class Spelt(str):
    """A URL as `httpx.URL` spells it, built without parsing (plain characters only)."""


class Wire:
    """The arguments of `httpx.AsyncClient.request`/`stream` for one Engage request."""

    def __init__(self, base_url: str, headers: Mapping[str, str], http: httpx.AsyncClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._urls: dict[object, httpx.URL] = {}
        # The client built by EngageClient carries the API headers itself; others get them here.
        missing = {name: v for name, v in headers.items() if http.headers.get(name) != v}
        typed = {} if "content-type" in http.headers else {"Content-Type": "application/json"}
        self._headers = {False: missing, True: {**missing, **_EVENT_STREAM}}
        self._json_headers = {stream: {**h, **typed} for stream, h in self._headers.items()}
        self._spelt_base: str | None = self._base_url
        if http.params or self._spell(*_PROBE) != str(self._url(*_PROBE)):
            self._spelt_base = None  # httpx would spell this base differently (or merge params)

    def args(
        self,
        path: str,
        params: Params | None,
        body: Any,
        *,
        stream: bool = False,
        spelt: bool = False,
    ) -> tuple[httpx.URL | str, dict[str, Any]]:
        """`spelt`: a plain URL may come as a `Spelt` string (for the lean path)."""
        kwargs: dict[str, Any] = {}
        if params and self._http.params:
            # A client with query parameters of its own: httpx merges ours into them.
            url: httpx.URL | str = self._base_url + path
            kwargs = {"params": dict(params)}
        else:
            url = (spelt and self._spell(path, params)) or self._url(path, params)
        if body is None:
            kwargs["headers"] = self._headers[stream]
        else:
            kwargs["headers"] = self._json_headers[stream]
            kwargs["content"] = json_body(body)
        return url, kwargs

    def _url(self, path: str, params: Params | None) -> httpx.URL:
        key = (path, *params.items()) if params else path
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= _PARSED_URLS:
                self._urls.clear()
            query = {"params": dict(params)} if params else {}
            url = self._urls[key] = httpx.URL(self._base_url + path, **query)
        return url

    def _spell(self, path: str, params: Params | None) -> Spelt | None:
        """The URL as httpx would spell it, or None unless every character is plain."""
        base = self._spelt_base
        if base is None or _PLAIN_PATH.fullmatch(path) is None:
            return None
        if not params:
            return Spelt(base + path)
        query = []
        for name, value in params.items():
            if isinstance(value, bool):
                return None  # httpx spells these "true"/"false"
            text = str(value)
            if _PLAIN_PARAM.fullmatch(name) is None or _PLAIN_PARAM.fullmatch(text) is None:
                return None
            query.append(f"{name}={text}")
        return Spelt(f"{base}{path}?{'&'.join(query)}")


def json_body(body: Any) -> bytes:
    """The bytes httpx's `json=` sends (httpx 0.28 `encode_json`)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
