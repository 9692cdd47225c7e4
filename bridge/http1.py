"""JSON POSTs over kept-alive HTTP/1.1 connections: aiohttp's request bytes, less of its CPU.

Each Slack turn makes two Web API calls; through aiohttp's request machinery each costs ~150 µs
of client CPU in `bench/slack_client_cpu.py`, over a prepared connection ~30 µs (in a whole
bridge process the system calls and loop wake-ups stay: BENCHMARKS.md "Slack adapter CPU per
turn, session 6"). `Http1` sends what
`aiohttp.ClientSession.post(url, json=..., headers=...)` sends (request line, Host, the caller's
headers in order, aiohttp's Accept and Accept-Encoding, Content-Length, `json.dumps` of the body,
TLS with aiohttp's verified context) and parses the answer with httptools (llhttp: content
length, chunked, Connection: close, HTTP/1.0), gzip and deflate undone. Callers keep aiohttp for
everything else (proxies, forms, files, GETs). `stream()` hands an answer's body out in the
pieces httptools parses it into (the Engage chat stream: `Stream`). Failures are aiohttp's
exception types, so retry rules written for aiohttp judge them the same way:

    connecting failed (nothing was sent)        aiohttp.ClientConnectorError (TLS: its subclasses)
    closed before the answer began              aiohttp.ServerDisconnectedError
    closed inside the answer, or cut short      aiohttp.ClientPayloadError
    reset while sending or reading              aiohttp.ClientOSError
    malformed or oversized answer               aiohttp.ClientResponseError
    no whole answer within `timeout`            TimeoutError
    a stream's next piece not within `timeout`  aiohttp.SocketTimeoutError (aiohttp's sock_read)

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
from collections import deque
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
# A streamed body read this far ahead of its reader stops reading from the socket (aiohttp's
# stream reader's high-water mark) until the reader has taken three quarters of it.
_STREAM_BUFFER = 1 << 16
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
        self._stream: Stream | None = None  # an answer handed out as it arrives
        self._interim = False

    def open(self, now: float) -> bool:
        transport = self.transport
        fresh = now - self.idle_since < KEEPALIVE_SECONDS
        return fresh and not self.lost and transport is not None and not transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._stream is not None:
            self._stream.lost(exc)
            return
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
            error = _bad(f"bad HTTP answer: {type(exc).__name__}")
            if self._stream is not None:
                self._stream.fail(error)
            self._fail(error)
            self.close()

    def on_status(self, reason: bytes) -> None:
        self._reason = reason.decode("utf-8", "surrogateescape")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("utf-8", "surrogateescape"),
                          value.decode("utf-8", "surrogateescape"))  # fmt: skip

    def on_headers_complete(self) -> None:
        stream = self._stream
        if stream is not None:
            headers, self._headers = CIMultiDictProxy(self._headers), CIMultiDict()
            status = self._parser.get_status_code()
            if status < 200:  # an interim answer (100 Continue, 103 Early Hints): as aiohttp, skip
                self._interim = True
                return
            stream.head(status, self._reason, headers, _ends_at_close(status, headers))

    def on_body(self, body: bytes) -> None:
        if self._stream is not None:
            self._stream.chunk(body)
            return
        self._size += len(body)
        if self._size > MAX_ANSWER_BYTES:
            self._fail(_bad(f"answer over {MAX_ANSWER_BYTES} bytes"))
            self.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        if self._stream is not None:
            self._started = False
            if self._interim:
                self._interim = False
                return
            self._stream.complete()
            return
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

    def start(self, stream: Stream, request: bytes) -> None:
        assert self.transport is not None
        self._stream = stream
        self.transport.write(request)

    def pause(self, paused: bool) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


class Stream:
    """An answer handed out as it arrives: `status`, `reason` and `headers` once its head is
    in, then `next_chunk()` for each piece of the body (still encoded) as httptools parses it,
    b"" at its end. Waiting for a piece longer than the read timeout fails as aiohttp's read
    timeout (`aiohttp.SocketTimeoutError`); a connection closed inside the body as aiohttp's
    `ClientPayloadError`. `release()` when done: the connection goes back to the pool only
    after a whole body, else it is closed (a stream cancelled, left early or failed)."""

    def __init__(
        self, owner: Http1, origin: Origin, connection: _Connection, read_timeout: float | None
    ) -> None:
        self.status = 0
        self.reason = ""
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        self._owner = owner
        self._origin = origin
        self._connection: _Connection | None = connection
        self._read_timeout = read_timeout
        self._headed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._ends_at_close = False
        self._done = False
        self._error: Exception | None = None

    # Called by the connection as the answer arrives.
    def head(
        self, status: int, reason: str, headers: CIMultiDictProxy[str], at_close: bool
    ) -> None:
        self.status, self.reason, self.headers = status, reason, headers
        self._ends_at_close = at_close
        if not self._headed.done():
            self._headed.set_result(None)

    def chunk(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _STREAM_BUFFER and not self._paused and self._connection:
            self._paused = True
            self._connection.pause(True)
        self._wake()

    def complete(self) -> None:
        self._done = True
        self._wake()

    def lost(self, exc: Exception | None) -> None:
        if self._done:
            return
        if isinstance(exc, OSError):
            self.fail(aiohttp.ClientOSError(exc.errno, str(exc)))
        elif not self._headed.done():
            self.fail(aiohttp.ServerDisconnectedError())
        elif self._ends_at_close and exc is None:
            self.complete()
        else:
            self.fail(aiohttp.ClientPayloadError("Response payload is not completed"))

    def fail(self, error: Exception) -> None:
        if self._done or self._error is not None:
            return
        self._error = error
        if not self._headed.done():
            self._headed.set_exception(error)
        self._wake()

    # Read by the caller.
    async def headed(self) -> None:
        await self._headed

    async def next_chunk(self) -> bytes:
        """The body's next piece as it arrived; b"" at its end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._paused and self._buffered <= _STREAM_BUFFER // 4 and self._connection:
                    self._paused = False
                    self._connection.pause(False)
                return data
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            await self._wait()

    async def read(self) -> bytes:
        """The rest of the body, content encoding undone; over MAX_ANSWER_BYTES is refused."""
        pieces: list[bytes] = []
        size = 0
        while data := await self.next_chunk():
            size += len(data)
            if size > MAX_ANSWER_BYTES:
                raise _bad(f"answer over {MAX_ANSWER_BYTES} bytes")
            pieces.append(data)
        body = b"".join(pieces)
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        return _decoded(body, encoding) if encoding in _DECODED else body

    def release(self) -> None:
        """Back to the pool after a whole body; closed otherwise. Done once; more is a no-op."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection._stream = None
        whole = self._done and self._error is None and not self._chunks
        if whole and not self._paused:
            self._owner._release(self._origin, connection)
        else:
            connection.close()
        self._owner._slots.release()

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None
        if self._read_timeout is not None:
            timer = loop.call_later(self._read_timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))


def _origin(target: URL) -> Origin:
    return (target.scheme, target.raw_host or "", target.port or 0)


def _connect_timed_out(origin: Origin) -> aiohttp.ConnectionTimeoutError:
    """aiohttp's `connect` timeout, in its words."""
    scheme, host, port = origin
    return aiohttp.ConnectionTimeoutError(f"Connection timeout to host {scheme}://{host}:{port}")


def _ends_at_close(status: int, headers: CIMultiDictProxy[str]) -> bool:
    """A body without a length or chunked framing: it ends when the server closes."""
    if status < 200 or status in (204, 304) or "Content-Length" in headers:
        return False
    return "chunked" not in headers.get("Transfer-Encoding", "").lower()


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
        origin = _origin(target)
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
                raise _connect_timed_out(origin) from exc
            raise
        encoding = answer_headers.get("Content-Encoding", "").strip().lower()
        if encoding in _DECODED:
            data = _decoded(data, encoding)
        return Answer(target, status, reason, answer_headers, data)

    async def stream(self, url: str, request: bytes) -> Stream:
        """`request` (as in `send`) sent, its answer's head read; the body is the caller's to
        read with the stream's `next_chunk()`, then `release()` it. Up to the head, bounded
        as `send` is; each piece of the body after it by the same timeout."""
        target = URL(url, encoded=True)
        origin = _origin(target)
        deadline = asyncio.timeout(self._timeout)
        connection: _Connection | None = None
        stream: Stream | None = None
        acquired = False
        try:
            async with deadline:
                await self._slots.acquire()
                acquired = True
                connection = await self._connection(target, origin)
                stream = Stream(self, origin, connection, self._timeout)
                connection.start(stream, request)
                await stream.headed()
        except BaseException as exc:
            if stream is not None:
                stream.release()  # not whole: the connection is closed, the slot given back
            else:
                if connection is not None:
                    connection.close()
                if acquired:
                    self._slots.release()
            expired = isinstance(exc, TimeoutError) and deadline.expired()
            if expired and connection is None and self._connect_timeout is not None:
                raise _connect_timed_out(origin) from exc
            raise
        return stream

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
        origin = _origin(target)
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
                raise _connect_timed_out(origin) from exc
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
