"""JSON POSTs over kept-alive HTTP/1.1 connections: aiohttp's request bytes, less of its CPU.

Each Slack turn makes two Web API calls; through aiohttp's request machinery each costs ~150 µs
of client CPU in `bench/slack_client_cpu.py`, over a prepared connection ~30 µs (in a whole
bridge process the system calls and loop wake-ups stay: BENCHMARKS.md "Slack adapter CPU per
turn, session 6"). `Http1` sends what
`aiohttp.ClientSession.post(url, json=..., headers=...)` sends (request line, Host, the caller's
headers in order, aiohttp's Accept and Accept-Encoding, Content-Length, `json.dumps` of the body,
TLS with aiohttp's verified context) and parses the answer with httptools (llhttp: content
length, chunked, Connection: close, HTTP/1.0), gzip and deflate undone. Callers keep aiohttp for
everything else (proxies, forms, files, GETs). Failures are aiohttp's exception types, so retry
rules written for aiohttp judge them the same way:

    connecting failed (nothing was sent)        aiohttp.ClientConnectorError (TLS: its subclasses)
    closed before the answer began              aiohttp.ServerDisconnectedError
    closed inside the answer, or cut short      aiohttp.ClientPayloadError
    reset while sending or reading              aiohttp.ClientOSError
    malformed or oversized answer               aiohttp.ClientResponseError
    no whole answer within `timeout`            TimeoutError

A kept-alive connection the server closed meanwhile is never written to again once its close
is seen; one closed while the request is on its way fails as above (aiohttp does the same for a
POST and repeats nothing).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import zlib
from collections.abc import Mapping
from typing import Any

import aiohttp
import httptools
from aiohttp.client_reqrep import ClientRequest, ConnectionKey
from aiohttp.helpers import parse_content_type
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

# What aiohttp adds to every request (without a proxy), sent the same.
AUTO_HEADERS: tuple[tuple[str, str], ...] = tuple(ClientRequest.DEFAULT_HEADERS.items())
# aiohttp's connector defaults: connections at once, idle connections kept this long.
CONNECTIONS = 100
KEEPALIVE_SECONDS = 15.0
# API answers are a few KB; a bigger one is refused rather than buffered.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_DECODED = frozenset({"gzip", "deflate"})
# aiohttp's test of a JSON content type (ClientResponse.json).
_JSON = re.compile(r"^application/(?:[\w.+-]+?\+)?json")
Origin = tuple[str, str, int]
Exchanged = tuple[int, str, CIMultiDictProxy[str], bytes]  # status, reason, headers, body


def usable() -> bool:
    """Whether aiohttp's Accept-Encoding offers only what this module decodes (it adds br and
    zstd when their packages are installed; then callers keep aiohttp)."""
    offered = dict(AUTO_HEADERS).get("Accept-Encoding", "")
    return {e.strip() for e in offered.split(",") if e.strip()} <= _DECODED


def default_ssl_context() -> ssl.SSLContext:
    """aiohttp's verified context (its connector's `_make_ssl_context(True)`)."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(("http/1.1",))
    return context


class Answer:
    """A whole answer, read as aiohttp's ClientResponse reads one (`read`, `text`, `json`)."""

    def __init__(
        self, url: URL, status: int, reason: str, headers: CIMultiDictProxy[str], body: bytes
    ) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        raw = headers.get("Content-Type")
        self.content_type, params = parse_content_type(raw or "application/octet-stream")
        self.charset = params.get("charset")

    def __repr__(self) -> str:
        """aiohttp's, as error messages quote it."""
        reason = self.reason.encode("ascii", "backslashreplace").decode("ascii") or "None"
        return f"<ClientResponse({self.url}) [{self.status} {reason}]>\n{self.headers}\n"

    async def read(self) -> bytes:
        return self.body

    async def text(self) -> str:
        return self.body.decode(self.charset or "utf-8")

    async def json(self) -> Any:
        content_type = self.headers.get("Content-Type", "").lower()
        if not _JSON.match(content_type):
            raise aiohttp.ContentTypeError(
                _info(self.url), (), status=self.status, headers=self.headers,
                message=f"Attempt to decode JSON with unexpected mimetype: {content_type}",
            )  # fmt: skip
        stripped = self.body.strip()
        return json.loads(stripped.decode(self.charset or "utf-8")) if stripped else None


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.keep_alive = True
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Exchanged] | None = None
        self._reason = ""
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._size = 0
        self._started = False

    def open(self, now: float) -> bool:
        transport = self.transport
        fresh = now - self.idle_since < KEEPALIVE_SECONDS
        return fresh and not self.lost and transport is not None and not transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if isinstance(exc, OSError):
            self._fail(aiohttp.ClientOSError(exc.errno, str(exc)))
        elif self._started:
            self._fail(aiohttp.ClientPayloadError("Response payload is not completed"))
        else:
            self._fail(aiohttp.ServerDisconnectedError())

    def data_received(self, data: bytes) -> None:
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(_bad(f"bad HTTP answer: {type(exc).__name__}"))
            self.close()

    def on_status(self, reason: bytes) -> None:
        self._reason = reason.decode("utf-8", "surrogateescape")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("utf-8", "surrogateescape"),
                          value.decode("utf-8", "surrogateescape"))  # fmt: skip

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_ANSWER_BYTES:
            self._fail(_bad(f"answer over {MAX_ANSWER_BYTES} bytes"))
            self.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        status = self._parser.get_status_code()
        headers, body = CIMultiDictProxy(self._headers), b"".join(self._body)
        self._headers, self._body, self._size, self._started = CIMultiDict(), [], 0, False
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((status, self._reason, headers, body))

    async def exchange(self, request: bytes) -> Exchanged:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self._answer
        finally:
            self._answer = None

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


class Http1:
    """JSON POSTs over kept-alive connections, at most `limit` at once (aiohttp's connector
    limit); idle connections are dropped after KEEPALIVE_SECONDS. `close()` when done."""

    def __init__(
        self,
        *,
        limit: int = CONNECTIONS,
        timeout: float | None = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        """`timeout` bounds a whole exchange. With `connect_timeout` (aiohttp's `sock_connect`),
        opening a connection takes at most that long, and a request the timeout stops before
        it was written fails as `aiohttp.ConnectionTimeoutError` (as aiohttp's `connect`
        timeout: waiting for a free connection and opening it); without, as TimeoutError."""
        self._slots = asyncio.Semaphore(limit)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._heads: dict[tuple[Any, ...], tuple[URL, Origin, str]] = {}
        self._closed = False

    async def post_json(self, url: str, headers: Mapping[str, str], body: Any) -> Answer:
        """What `aiohttp.ClientSession.post(url, json=body, headers=headers)` sends, answered."""
        target, origin, head = self._head(url, headers)
        raw = json.dumps(body).encode()
        request = b"%s%d\r\n\r\n%s" % (head.encode("latin-1"), len(raw), raw)
        return await self._exchange(target, origin, request)

    async def send(self, url: str, request: bytes) -> Answer:
        """`request`, a whole HTTP/1.1 request as the caller wrote it, to `url`'s origin."""
        target = URL(url, encoded=True)
        origin = (target.scheme, target.raw_host or "", target.port or 0)
        return await self._exchange(target, origin, request)

    async def _exchange(self, target: URL, origin: Origin, request: bytes) -> Answer:
        deadline = asyncio.timeout(self._timeout)
        connection: _Connection | None = None
        try:
            async with deadline, self._slots:
                connection = await self._connection(target, origin)
                try:
                    status, reason, answer_headers, data = await connection.exchange(request)
                except BaseException:
                    connection.close()
                    raise
                self._release(origin, connection)
        except TimeoutError as exc:
            if connection is None and self._connect_timeout is not None and deadline.expired():
                # Nothing sent: as aiohttp's `connect` timeout (a free connection, opened).
                message = f"Connection timeout to host {target.scheme}://{origin[1]}:{origin[2]}"
                raise aiohttp.ConnectionTimeoutError(message) from exc
            raise
        encoding = answer_headers.get("Content-Encoding", "").strip().lower()
        if encoding in _DECODED:
            data = _decoded(data, encoding)
        return Answer(target, status, reason, answer_headers, data)

    def close(self) -> None:
        """Close idle connections; those in use are closed when their answer is in."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _head(self, url: str, headers: Mapping[str, str]) -> tuple[URL, Origin, str]:
        """The request line and headers up to Content-Length's value, in aiohttp's order: Host,
        the caller's headers, its automatic ones, Content-Length."""
        key = (url, *headers.items())
        cached = self._heads.get(key)
        if cached is not None:
            return cached
        target = URL(url)
        names = {name.lower() for name in headers}
        lines = f"POST {target.raw_path_qs} HTTP/1.1\r\nHost: {target.host_port_subcomponent}\r\n"
        lines += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        lines += "".join(f"{n}: {v}\r\n" for n, v in AUTO_HEADERS if n.lower() not in names)
        lines += "Content-Length: "
        if len(self._heads) > 1_000:  # credentials come and go
            self._heads.clear()
        origin = (target.scheme, target.raw_host or "", target.port or 0)
        self._heads[key] = (target, origin, lines)
        return target, origin, lines

    async def _connection(self, target: URL, origin: Origin) -> _Connection:
        now = asyncio.get_running_loop().time()
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.open(now):
                return connection
            connection.close()
        return await self._connect(origin)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or default_ssl_context()
        deadline = asyncio.timeout(self._connect_timeout)
        try:
            async with deadline:
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError as exc:
            if deadline.expired():
                message = f"Connection timeout to host {scheme}://{host}:{port}"
                raise aiohttp.ConnectionTimeoutError(message) from exc
            raise aiohttp.ClientConnectorError(_key(origin, context), exc) from exc
        except ssl.SSLCertVerificationError as exc:
            raise aiohttp.ClientConnectorCertificateError(_key(origin, context), exc) from exc
        except ssl.SSLError as exc:
            raise aiohttp.ClientConnectorSSLError(_key(origin, context), exc) from exc
        except OSError as exc:
            raise aiohttp.ClientConnectorError(_key(origin, context), exc) from exc
        return connection

    def _release(self, origin: Origin, connection: _Connection) -> None:
        now = connection.idle_since = asyncio.get_running_loop().time()
        if self._closed or not (connection.keep_alive and connection.open(now)):
            connection.close()
            return
        idle = self._idle.setdefault(origin, [])
        while idle and not idle[0].open(now):  # the longest idle come first
            idle.pop(0).close()
        idle.append(connection)


def _key(origin: Origin, context: ssl.SSLContext | None) -> ConnectionKey:
    return ConnectionKey(origin[1], origin[2], context is not None, context or True,
                         None, None, None, None)  # fmt: skip


def _info(url: URL) -> aiohttp.RequestInfo:
    return aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)


def _bad(message: str) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(_info(URL()), (), status=400, message=message)


def _decoded(data: bytes, encoding: str) -> bytes:
    """gzip, or deflate with or without its zlib header (aiohttp takes both)."""
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:
        wbits = -zlib.MAX_WBITS if not data or (data[0] & 0x0F) != 8 else zlib.MAX_WBITS
    unpacker = zlib.decompressobj(wbits)
    try:
        out = unpacker.decompress(data, MAX_ANSWER_BYTES)
    except zlib.error as exc:
        raise aiohttp.ClientPayloadError(f"Can not decode content-encoding: {encoding}") from exc
    if unpacker.unconsumed_tail:
        raise _bad(f"answer over {MAX_ANSWER_BYTES} bytes")
    return out
