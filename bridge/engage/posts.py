"""An owned client's whole POSTs (create a conversation, add messages, a chat) over `bridge.http1`.

Through aiohttp's request machinery a create cost ~250 us of client CPU against the emulator,
over a kept-alive `Http1` connection ~110 us (BENCHMARKS.md, "CPU per turn outside ingress and
store"). The bytes are the ones `Lean` has aiohttp write: the request line, httpx's header lines
as they are, the body; only heads with an Accept-Encoding `Http1` can undo (gzip, deflate) are
taken. Its failures are aiohttp's exception types (`as_httpx` maps them as before); opening
a connection is bounded by the client's connect timeout (`ConnectTimeout`, never sent), the rest
of the exchange by its read timeout. Differences that remain: answers over 8 MiB are refused
(`http1.MAX_ANSWER_BYTES`), idle connections are kept 15 s (`http1.KEEPALIVE_SECONDS`; httpx's
pool 5 s), and these POSTs have a pool of their own, as large as the transport's. The chat
stream goes the same way (`stream`): its body is read as it arrives, each piece within the read
timeout (aiohttp's `sock_read`), so the transport's aiohttp session is not opened on a turn.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence

import httpx
from multidict import CIMultiDictProxy

from bridge.http1 import Answer, Http1, Stream

_DECODED = frozenset({"gzip", "deflate"})
_UNDONE = frozenset({"content-encoding", "content-length"})  # no longer true of a body undone


class Posts:
    """`Http1` for one client, opened on first use."""

    def __init__(self, limit: int, timeouts: Mapping[str, float | None]) -> None:
        self._limit = limit
        self._timeouts = timeouts
        self._http1: Http1 | None = None

    async def post(self, url: str, framing: Framing, content: bytes) -> Answer:
        """POST `content` to `url` (spelt: plain characters) with the head `framing` holds."""
        return await self._http1_for(url).send(url, _request(url, framing, content))

    async def stream(self, url: str, framing: Framing, content: bytes) -> Stream:
        """`post`, its answer's body handed out as it arrives (the chat stream)."""
        return await self._http1_for(url).stream(url, _request(url, framing, content))

    def _http1_for(self, url: str) -> Http1:
        http1 = self._http1
        if http1 is None:
            http1 = self._http1 = self._open(url)
        return http1

    def close(self) -> None:
        if self._http1 is not None:
            self._http1.close()

    def _open(self, url: str) -> Http1:
        context: ssl.SSLContext | None = None
        if url.startswith("https:"):
            context = httpx.create_ssl_context()  # what the aiohttp transport verifies with
        return Http1(
            limit=self._limit,
            timeout=self._timeouts.get("read"),
            connect_timeout=self._timeouts.get("connect"),
            ssl_context=context,
        )


Framing = tuple[bytes, bytes]  # a head's bytes before and after its Content-Length value


def _request(url: str, framing: Framing, content: bytes) -> bytes:
    before, after = framing
    path = "/" + url.split("/", 3)[3]
    return b"POST %s HTTP/1.1\r\n%s%d%s%s" % (
        path.encode("ascii"),
        before,
        len(content),
        after,
        content,
    )


def framing(head: Sequence[tuple[str, str]]) -> Framing | None:
    """The header lines of `head` (httpx's, in the order aiohttp writes them) around the
    Content-Length value, or None for a head `Http1` cannot stand in for: an Accept-Encoding it
    cannot undo (only gzip and deflate), no single Content-Length, a line not in ASCII."""
    before: list[str] = []
    after: list[str] = []
    lines = before
    for name, value in head:
        lower = name.lower()
        if lower == "accept-encoding":
            offered = {e.strip() for e in value.split(",") if e.strip()}
            if not offered <= _DECODED:
                return None
        if lower == "content-length":
            if lines is after:
                return None
            before.append(f"{name}: ")
            lines = after
            after.append("\r\n")
            continue
        lines.append(f"{name}: {value}\r\n")
    if lines is not after:
        return None
    after.append("\r\n")
    try:
        return "".join(before).encode("ascii"), "".join(after).encode("ascii")
    except UnicodeEncodeError:
        return None


def httpx_headers(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    """An answer's headers for an `httpx.Response` of its (already undone) body."""
    encoding = headers.get("content-encoding", "").strip().lower()
    undone = _UNDONE if encoding in _DECODED else frozenset()
    return [(name, value) for name, value in headers.items() if name.lower() not in undone]
