"""The owned client's requests sent by its aiohttp session directly: httpx's bytes, not its layers.

Per request, `httpx.AsyncClient` costs CPU before and after the transport: `build_request`, the
auth and redirect generators, the hooks, the response model and the three async generators a
body is read through, which a chat stream left at `[DONE]` hands to the event loop's finalizer
hook (a wake-up of the loop and a task per generator, every turn; BENCHMARKS.md, "Fixed CPU and
CPU per turn at 200/50"). For the client `EngageClient` builds for itself (`OwnedHttp` over
`AiohttpTransport`) the head of each kind of request is built by httpx once and kept (only its
Content-Length follows the body), and the request goes out with the bytes the transport would
send: a whole JSON POST or a chat stream over the kept-alive `bridge.http1` connections of
`bridge/engage/posts.py` (and `streamed.py` for the stream), anything `Http1` cannot send to the
transport's aiohttp session. Failures are aiohttp's exception types either way (they become
httpx's by `httpx_error`), so the retry rules see the same exceptions.

Left to httpx whole: a client with a proxy from the environment, auth, hooks, query parameters or
redirects of its own; a request while its cookie jar holds a cookie (a response that sets one is
given to the jar); a body over 64 KiB (timed slices). A response with a content encoding or a
charset other than UTF-8 is handed to httpx to decode, as the transport hands it over.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import httpx
from yarl import URL

from bridge.engage.aiohttp_transport import (
    MAX_WHOLE_BODY,
    NOT_FORWARDED,
    AiohttpTransport,
    aiohttp_timeout,
    as_httpx,
)
from bridge.engage.posts import Framing, Posts, framing, httpx_headers
from bridge.engage.wire import Spelt
from bridge.http1 import CONNECTIONS, Stream

_CONTENT_LENGTH = "content-length"
# Content-Type parameters under which httpx decodes text as UTF-8 (the client's default).
_UTF8_PARAMETERS = ("", "charset=utf-8", 'charset="utf-8"')
_KEPT_URLS = 512
_httpx_log = logging.getLogger("httpx")


def plain(headers: Mapping[str, str]) -> bool:
    """The body is the text as sent: no content encoding, UTF-8 (or no charset)."""
    parameters = headers.get("content-type", "").partition(";")[2].strip().lower()
    return headers.get("content-encoding", "identity") == "identity" and (
        parameters in _UTF8_PARAMETERS
    )


class Reply:
    """A whole plain response: what the client reads of an `httpx.Response`."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Lean:
    """Sends the requests `takes` accepts through `transport`'s session, as the client would."""

    def __init__(self, http: httpx.AsyncClient, transport: AiohttpTransport) -> None:
        self._http = http
        self._transport = transport
        timeouts = http.timeout.as_dict()
        self._timeout = aiohttp_timeout(timeouts)
        self._heads: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
        self._urls: dict[httpx.URL | str, URL] = {}
        # Whole POSTs to spelt URLs go over bridge.http1 (posts.py), if their head allows.
        self._posts = Posts(transport.limits.max_connections or CONNECTIONS, timeouts)
        self._framings: dict[tuple[Any, ...], Framing | None] = {}

    @classmethod
    def over(cls, http: httpx.AsyncClient, transport: httpx.AsyncBaseTransport) -> Lean | None:
        """For a client sending every request through `transport` unchanged; else None."""
        if not isinstance(transport, AiohttpTransport):
            return None
        if http.trust_env and urllib.request.getproxies():
            return None  # httpx may route through a proxy transport of its own
        hooks = any(http.event_hooks.values())
        if http.auth is not None or hooks or http.params or http.follow_redirects:
            return None
        return cls(http, transport)

    def takes(self, kwargs: Mapping[str, Any]) -> bool:
        content = kwargs.get("content")
        if content is not None and len(content) > MAX_WHOLE_BODY:
            return False
        return "params" not in kwargs and not self._http.cookies

    async def open(
        self, method: str, url: httpx.URL | str, kwargs: Mapping[str, Any]
    ) -> aiohttp.ClientResponse:
        """Send the request; the response's body is the caller's to read, then `release()`.
        `url` is parsed, or a string spelt as httpx spells it (`bridge.engage.wire.Spelt`)."""
        content: bytes | None = kwargs.get("content")
        headers = self._head(method, url, kwargs["headers"], content)
        target = self._urls.get(url)
        if target is None:
            if len(self._urls) >= _KEPT_URLS:
                self._urls.clear()
            target = self._urls[url] = URL(str(url), encoded=True)
        with as_httpx:
            response = await self._transport.session.request(
                method,
                target,
                headers=headers,
                data=content or None,
                allow_redirects=False,
                compress=None,
                timeout=self._timeout,
            )
        if "set-cookie" in response.headers:
            self._keep_cookies(method, url, kwargs, response.status, response.raw_headers)
        if _httpx_log.isEnabledFor(logging.INFO):  # httpx's own line per request (debug runs)
            reason = response.reason or ""
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"', method, url, "HTTP/1.1", response.status, reason
            )
        return response

    async def request(
        self, method: str, url: httpx.URL | str, kwargs: Mapping[str, Any]
    ) -> Reply | httpx.Response:
        """The whole response."""
        content: bytes | None = kwargs.get("content")
        if method == "POST" and content is not None and isinstance(url, Spelt):
            framed = self._framing(url, kwargs["headers"], content)
            if framed is not None:
                return await self._post(url, kwargs, framed, content)
        return await self.whole(await self.open(method, url, kwargs))

    async def stream_post(self, url: httpx.URL | str, kwargs: Mapping[str, Any]) -> Stream | None:
        """A POST to a spelt URL sent over `bridge.http1`, its answer's head read and its body
        left to the caller (then `release()`); None when its head is not one `Http1` sends."""
        content: bytes | None = kwargs.get("content")
        if content is None or not isinstance(url, Spelt):
            return None
        framed = self._framing(url, kwargs["headers"], content)
        if framed is None:
            return None
        with as_httpx:
            stream = await self._posts.stream(url, framed, content)
        try:
            if "set-cookie" in stream.headers:
                headers = list(stream.headers.items())
                self._keep_cookies("POST", url, kwargs, stream.status, headers)
        except BaseException:
            stream.release()
            raise
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", stream.status,
                stream.reason,
            )  # fmt: skip
        return stream

    def close(self) -> None:
        """Close the idle connections of the POSTs' own pool (the session is the transport's)."""
        self._posts.close()

    def _framing(self, url: str, headers: Mapping[str, str], content: bytes) -> Framing | None:
        key = (url.split("/", 3)[2], *headers.items())
        if key not in self._framings:
            self._framings[key] = framing(self._head("POST", url, headers, content))
        return self._framings[key]

    async def _post(
        self, url: str, kwargs: Mapping[str, Any], framed: Framing, content: bytes
    ) -> Reply | httpx.Response:
        with as_httpx:
            answer = await self._posts.post(url, framed, content)
        if "set-cookie" in answer.headers:
            self._keep_cookies("POST", url, kwargs, answer.status, list(answer.headers.items()))
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", answer.status,
                answer.reason,
            )  # fmt: skip
        if plain(answer.headers):
            return Reply(answer.status, answer.headers, answer.body)
        headers = httpx_headers(answer.headers)
        return httpx.Response(answer.status, headers=headers, content=answer.body)

    async def whole(self, response: aiohttp.ClientResponse) -> Reply | httpx.Response:
        """`response` read to its end, its connection released."""
        try:
            with as_httpx:
                body = await response.read()
        finally:
            response.release()
        if plain(response.headers):
            return Reply(response.status, response.headers, body)
        return httpx.Response(response.status, headers=response.raw_headers, content=body)

    def _keep_cookies(
        self,
        method: str,
        url: httpx.URL | str,
        kwargs: Mapping[str, Any],
        status: int,
        headers: Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]],
    ) -> None:
        """Cookies a response sets go to the client's jar, as httpx keeps them (the requests
        after it go through httpx, which sends them)."""
        request = self._request(method, url, kwargs["headers"], kwargs.get("content"))
        self._http.cookies.extract_cookies(httpx.Response(status, headers=headers, request=request))

    def _head(
        self,
        method: str,
        url: httpx.URL | str,
        headers: Mapping[str, str],
        content: bytes | None,
    ) -> list[tuple[str, str]]:
        """The header lines the transport sends for this request, as httpx builds them."""
        netloc = url.netloc if isinstance(url, httpx.URL) else url.split("/", 3)[2]
        key = (method, netloc, content is None, *headers.items())
        head = self._heads.get(key)
        if head is None:
            built = self._request(method, url, headers, content)
            head = [
                (name, value)
                for name, value in built.headers.multi_items()
                if name.lower() not in NOT_FORWARDED
            ]
            self._heads[key] = head
        if content is None:
            return head
        length = str(len(content))
        return [(n, length) if n == _CONTENT_LENGTH else (n, v) for n, v in head]

    def _request(
        self,
        method: str,
        url: httpx.URL | str,
        headers: Mapping[str, str],
        content: bytes | None,
    ) -> httpx.Request:
        return self._http.build_request(method, url, headers=headers, content=content)
