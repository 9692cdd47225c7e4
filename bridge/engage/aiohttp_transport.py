"""An httpx transport over aiohttp: same httpx API and errors, a quarter of httpcore's async CPU.

httpcore's async pool checks every pooled connection for every request (a `getpeername` and a
`poll` per connection, through anyio), so its CPU per request grows with the pool. aiohttp
learns that an idle connection was closed from the event loop instead. The client above
(`EngageHttp`) decides retries from httpx's exception types, so the mapping below keeps one
rule: only failures raised before a single byte was sent (aiohttp's connector errors and its
connect timeout, which also covers waiting for a free connection) become `ConnectError` /
`ConnectTimeout`; every later failure becomes a read/write error or timeout.

Timeouts: httpx `connect` -> aiohttp `sock_connect` (opening a connection); `pool` -> aiohttp
`connect`, which bounds waiting for a free connection *and* opening one (aiohttp cannot bound
the wait alone); `read` -> `sock_read` (the longest gap between received bytes, armed once the
request is sent). aiohttp has no write timeout: a body up to 64 KiB never waits (asyncio
buffers it whole), and a larger one is sent in slices, each of which must be taken by the
socket within `write` seconds or the request fails with `WriteTimeout`.

Why not the httpx-aiohttp package (0.2.0, evaluated for issue 13): it maps aiohttp's whole
`ClientConnectionError` family to `ConnectTimeout`, so a server that drops the connection after
reading a chat looks "never sent" and the chat is sent again on every try (3 of 3 in
`bench/transport_check.py`; ours and httpcore send it once). It also has no write timeout. Its
CPU per create + chat_stream was 0-11 % lower than ours in three side-by-side runs (at most
~0.1 ms per turn, moving between runs; see BENCHMARKS.md): not worth a duplicate agent turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import aiohttp
import httpx
from yarl import URL

# Most specific first: the first matching aiohttp class decides the httpx exception.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (asyncio.TimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.ReadError),
    (OSError, httpx.ReadError),
)
NOT_FORWARDED = frozenset({"transfer-encoding"})  # the body is sent whole, with a length
# asyncio's transport takes up to 64 KiB without making the writer wait: such a body cannot
# stall, so it goes out as one bytes object; a larger one goes in timed slices of that size.
MAX_WHOLE_BODY = _SLICE = 1 << 16


def httpx_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx exception for an aiohttp (or socket) failure; None for anything else."""
    for aiohttp_type, httpx_type in _ERRORS:
        if isinstance(exc, aiohttp_type):
            return httpx_type(str(exc) or type(exc).__name__)
    return None


class _AsHttpx:
    """`with as_httpx:` raises an aiohttp (or socket) failure as its httpx exception
    (`httpx_error`); any other exception goes through as it is."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        mapped = httpx_error(exc) if isinstance(exc, Exception) else None
        if mapped is not None:
            raise mapped from exc


as_httpx = _AsHttpx()


def aiohttp_timeout(timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's `request.extensions["timeout"]`."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.get("pool"),
        sock_connect=timeouts.get("connect"),
        sock_read=timeouts.get("read"),
    )


class AiohttpResponseStream(httpx.AsyncByteStream):
    """The raw (still encoded) response body; httpx decodes it.

    Its own iterator rather than an async generator: a generator left suspended (a chat stream
    read up to `[DONE]`) is closed by the event loop's finalizer hook in a task of its own."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    def __aiter__(self) -> AiohttpResponseStream:
        return self

    async def __anext__(self) -> bytes:
        with as_httpx:
            chunk = await self._response.content.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        # A body not read to its end closes the connection rather than returning it to the pool.
        self._response.release()


def httpx_response(response: aiohttp.ClientResponse) -> httpx.Response:
    """The httpx response for an aiohttp one whose body is still to be read."""
    extensions = {"http_version": b"HTTP/1.1"}
    if response.reason:
        extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
    return httpx.Response(
        status_code=response.status,
        headers=response.raw_headers,
        stream=AiohttpResponseStream(response),
        extensions=extensions,
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session, opened on first use inside the event loop; `aclose()` closes it."""

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        self._limits = limits or httpx.Limits()
        self._session: aiohttp.ClientSession | None = None

    @property
    def limits(self) -> httpx.Limits:
        return self._limits

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, opened on first use (inside the event loop)."""
        if self._session is None:
            self._session = self._open()
        return self._session

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=httpx.create_ssl_context(),
        )
        return aiohttp.ClientSession(
            connector=connector,
            # httpx already handles cookies, decoding, redirects and proxies (from the
            # environment it mounts its own transports for proxied URLs).
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            raise_for_status=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in NOT_FORWARDED
        ]
        with as_httpx:  # a WriteTimeout of _send_slices is httpx's already
            if len(body) <= _SLICE:
                response = await self._send(request, headers, body or None, timeouts)
            else:
                response = await self._send_slices(request, headers, body, timeouts)
        return httpx_response(response)

    async def _send(
        self,
        request: httpx.Request,
        headers: list[tuple[str, str]],
        data: bytes | AsyncIterator[bytes] | None,
        timeouts: Mapping[str, float | None],
    ) -> aiohttp.ClientResponse:
        return await self.session.request(
            request.method,
            URL(str(request.url), encoded=True),
            headers=headers,
            data=data,
            allow_redirects=False,
            compress=None,
            timeout=aiohttp_timeout(timeouts),
            server_hostname=_sni(request),
        )

    async def _send_slices(
        self,
        request: httpx.Request,
        headers: list[tuple[str, str]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> aiohttp.ClientResponse:
        """`_send` with a large body, each slice of it written within the write timeout."""
        deadline = asyncio.timeout(None)
        slices = _timed_slices(body, deadline, timeouts.get("write"))
        try:
            async with deadline:
                return await self._send(request, headers, slices, timeouts)
        except TimeoutError as exc:
            if deadline.expired():
                raise httpx.WriteTimeout("writing the request body timed out") from exc
            raise

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _sni(request: httpx.Request) -> str | None:
    hostname = request.extensions.get("sni_hostname")
    return hostname if isinstance(hostname, str) else None


async def _timed_slices(
    body: bytes, deadline: asyncio.Timeout, write: float | None
) -> AsyncIterator[bytes]:
    """The body in slices; aiohttp asks for the next one only once the last was written."""
    loop = asyncio.get_running_loop()
    for start in range(0, len(body), _SLICE):
        if write is not None:
            deadline.reschedule(loop.time() + write)
        yield body[start : start + _SLICE]
    deadline.reschedule(None)
