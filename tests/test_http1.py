"""bridge.http1 against aiohttp on the same canned servers: same bytes out, same answers, same
errors (plain and TLS, over loopback)."""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge import http1
from bridge.http1 import Http1

FAKES = Path(__file__).parent / "fakes"
HEADERS = {"Content-Type": "application/json;charset=utf-8", "Authorization": "Bearer xoxb-1",
           "User-Agent": "Python/3.11 slackclient/3"}  # fmt: skip
BODY = {"channel": "C1", "text": "héllo <@U1> “quotes”", "metadata": {"part": 0}, "ok": False}
Reply = Callable[[bytes], bytes | None]  # the request's bytes -> the answer's (None: hang up)


def answer(body: bytes, *, headers: str = "", status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n{headers}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


OK = answer(b'{"ok": true, "ts": "1.2"}')


class Canned:
    """A server that answers every request with `reply(request)`, noting each connection's
    requests (their bytes) and whether it is still open."""

    def __init__(self, reply: Reply = lambda _: OK, context: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.context = context
        self.connections: list[list[bytes]] = []
        self.open = 0
        self.close_after = False  # hang up after each answer
        self.slow: Callable[[bytes], Awaitable[bytes]] | None = None
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.context else "http"
        self.url = f"{scheme}://127.0.0.1:{port}/api/chat.postMessage"

    async def aclose(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests: list[bytes] = []
        self.connections.append(requests)
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                request = head + await reader.readexactly(length)
                requests.append(request)
                out = await self.slow(request) if self.slow else self.reply(request)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if self.close_after or b"connection: close" in out.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@pytest.fixture
async def poster() -> AsyncIterator[Http1]:
    client = Http1(timeout=5.0)
    yield client
    client.close()


async def served(reply: Reply, context: ssl.SSLContext | None = None) -> Canned:
    server = Canned(reply, context)
    await server.start()
    return server


async def by_aiohttp(url: str, context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        ssl_arg: ssl.SSLContext | bool = context if context is not None else True
        async with session.post(url, json=BODY, headers=HEADERS, ssl=ssl_arg) as res:
            return res.status, await _json_or_error(res)


async def by_http1(poster: Http1, url: str) -> tuple[int, Any]:
    res = await poster.post_json(url, HEADERS, BODY)
    return res.status, await _json_or_error(res)


async def _json_or_error(res: Any) -> Any:
    try:
        return await res.json()
    except aiohttp.ContentTypeError:
        return ("ContentTypeError", await res.text())


async def test_the_request_goes_out_byte_for_byte_as_aiohttps(poster: Http1) -> None:
    server = await served(lambda _: OK)
    try:
        await by_aiohttp(server.url)
        await by_http1(poster, server.url)
    finally:
        await server.aclose()
    (by_lib,), (ours,) = server.connections
    assert ours == by_lib
    assert ours.startswith(b"POST /api/chat.postMessage HTTP/1.1\r\nHost: 127.0.0.1:")
    assert json.loads(ours.split(b"\r\n\r\n", 1)[1]) == BODY


CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n5\r\n{\"ok\"\r\n6\r\n: true\r\n1\r\n}\r\n0\r\n\r\n")  # fmt: skip
DEFLATE = "Content-Encoding: deflate\r\n"
NOT_JSON = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n<b/>"
ANSWERS = {
    "content length": OK,
    "chunked": CHUNKED,
    "gzip": answer(gzip.compress(b'{"ok": true, "z": 1}'), headers="Content-Encoding: gzip\r\n"),
    "deflate (zlib)": answer(zlib.compress(b'{"ok": true}'), headers=DEFLATE),
    "deflate (raw)": answer(zlib.compress(b'{"ok": 1}')[2:-4], headers=DEFLATE),
    "HTTP/1.0, closed": OK.replace(b"HTTP/1.1", b"HTTP/1.0"),
    "Connection: close": answer(b'{"ok": true}', headers="Connection: close\r\n"),
    "429 with Retry-After": answer(b'{"ok": false, "error": "ratelimited"}',
                                   headers="Retry-After: 3\r\n", status="429 Too Many Requests"),
    "not JSON": NOT_JSON,
    "empty JSON": answer(b"  "),
}  # fmt: skip


@pytest.mark.parametrize("case", ANSWERS)
async def test_answers_read_as_aiohttp_reads_them(poster: Http1, case: str) -> None:
    server = await served(lambda _: ANSWERS[case])
    try:
        assert await by_http1(poster, server.url) == await by_aiohttp(server.url)
        if case == "429 with Retry-After":
            res = await poster.post_json(server.url, HEADERS, BODY)
            assert res.headers["retry-after"] == "3"
    finally:
        await server.aclose()


async def test_connections_are_kept_alive_and_dropped_when_the_server_says_so(
    poster: Http1,
) -> None:
    replies = iter([OK, OK, answer(b'{"ok": true}', headers="Connection: close\r\n"), OK])
    server = await served(lambda _: next(replies))
    try:
        for _ in range(4):
            assert (await poster.post_json(server.url, HEADERS, BODY)).status == 200
    finally:
        await server.aclose()
    assert [len(requests) for requests in server.connections] == [3, 1]


async def test_a_connection_the_server_closed_while_idle_is_not_used_again(poster: Http1) -> None:
    server = await served(lambda _: answer(b'{"ok": true}'))
    try:
        await poster.post_json(server.url, HEADERS, BODY)
        server.reply = lambda _: None
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await poster.post_json(server.url, HEADERS, BODY)
        server.reply = lambda _: OK
        assert (await poster.post_json(server.url, HEADERS, BODY)).status == 200
    finally:
        await server.aclose()
    assert [len(requests) for requests in server.connections] == [2, 1]


async def test_idle_connections_past_their_keep_alive_are_closed(
    poster: Http1, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await served(lambda _: OK)
    try:
        await poster.post_json(server.url, HEADERS, BODY)
        monkeypatch.setattr(http1, "KEEPALIVE_SECONDS", 0.0)
        await poster.post_json(server.url, HEADERS, BODY)
        await wait_for(lambda: server.open == 1)
    finally:
        await server.aclose()
    assert [len(requests) for requests in server.connections] == [1, 1]


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


HALF = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"ok"'
FAILURES: dict[str, tuple[Reply, type[Exception]]] = {
    "closed before the answer": (lambda _: None, aiohttp.ServerDisconnectedError),
    "closed inside the answer": (lambda _: HALF, aiohttp.ClientPayloadError),
    "not HTTP": (lambda _: b"SMTP ready\r\n\r\n", aiohttp.ClientResponseError),
}


@pytest.mark.parametrize("case", FAILURES)
async def test_failures_are_aiohttps_exceptions(poster: Http1, case: str) -> None:
    reply, expected = FAILURES[case]
    server = await served(reply)
    server.close_after = True
    try:
        with pytest.raises(expected):
            await by_aiohttp(server.url)
        with pytest.raises(expected):
            await poster.post_json(server.url, HEADERS, BODY)
    finally:
        await server.aclose()
    assert [len(requests) for requests in server.connections] == [1, 1]


async def test_refused_connections_and_timeouts(unused_tcp_port: int) -> None:
    poster = Http1(timeout=0.2)
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await poster.post_json(f"http://127.0.0.1:{unused_tcp_port}/api/x", HEADERS, BODY)
        held = asyncio.Event()

        def never(_: bytes) -> bytes:
            held.set()
            return b""

        server = await served(never)
        try:
            with pytest.raises(TimeoutError):
                await poster.post_json(server.url, HEADERS, BODY)
            assert held.is_set()
        finally:
            await server.aclose()
    finally:
        poster.close()


async def test_oversized_answers_are_refused(
    poster: Http1, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1, "MAX_ANSWER_BYTES", 64)
    big = json.dumps({"ok": True, "pad": "x" * 200}).encode()
    for out in (answer(big), answer(gzip.compress(big), headers="Content-Encoding: gzip\r\n")):
        server = await served(lambda _, out=out: out)  # type: ignore[misc]
        try:
            with pytest.raises(aiohttp.ClientResponseError):
                await poster.post_json(server.url, HEADERS, BODY)
        finally:
            await server.aclose()


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(FAKES / "tls_cert.pem", FAKES / "tls_key.pem")
    client = http1.default_ssl_context()
    client.load_verify_locations(FAKES / "tls_cert.pem")
    return server, client


async def test_over_tls_the_same_request_and_answer_as_aiohttp() -> None:
    server_context, client_context = tls_contexts()
    server = await served(lambda _: OK, server_context)
    poster = Http1(timeout=5.0, ssl_context=client_context)
    try:
        assert await by_http1(poster, server.url) == await by_aiohttp(server.url, client_context)
        assert (await poster.post_json(server.url, HEADERS, BODY)).status == 200
    finally:
        poster.close()
        await server.aclose()
    (ours, again), (by_lib,) = server.connections
    assert ours == again == by_lib


async def test_an_untrusted_certificate_fails_as_in_aiohttp() -> None:
    server_context, _ = tls_contexts()
    server = await served(lambda _: OK, server_context)
    poster = Http1(timeout=5.0)
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await by_aiohttp(server.url)
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await poster.post_json(server.url, HEADERS, BODY)
    finally:
        poster.close()
        await server.aclose()
    assert server.connections == []  # no handshake finished, nothing was sent


async def test_a_connection_in_use_when_closing_is_closed_after_its_answer() -> None:
    poster = Http1(timeout=5.0)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: bytes) -> bytes:
        arrived.set()
        await release.wait()
        return OK

    server = Canned(lambda _: OK)
    server.slow = slow
    await server.start()
    try:
        posting = asyncio.ensure_future(poster.post_json(server.url, HEADERS, BODY))
        await asyncio.wait_for(arrived.wait(), 5)
        poster.close()
        release.set()
        assert (await posting).status == 200
        await wait_for(lambda: server.open == 0)
    finally:
        await server.aclose()


async def test_send_writes_the_callers_request_as_it_is_and_reads_the_answer(
    poster: Http1,
) -> None:
    server = await served(lambda _: OK)
    try:
        path = server.url.split("/", 3)[3]
        body = b'{"a":1}'
        request = (
            f"POST /{path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
            "content-type: application/json\r\n\r\n"
        ).encode() + body
        res = await poster.send(server.url, request)
        assert (res.status, await res.json()) == (200, {"ok": True, "ts": "1.2"})
        assert server.connections == [[request]]
    finally:
        await server.aclose()


async def test_with_a_connect_timeout_a_request_never_written_is_a_connection_timeout() -> None:
    """As aiohttp's `connect` timeout: waiting for a free connection counts as connecting (the
    request was not sent); without a connect timeout it stays a TimeoutError."""
    unfinished = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"
    server = await served(lambda _: unfinished)
    host = server.url.split("/")[2].encode()
    streamed = (
        b"POST /api/chat.postMessage HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\n\r\n{}" % host
    )
    try:
        for held, (connect_timeout, error) in enumerate(
            ((5.0, aiohttp.ConnectionTimeoutError), (None, TimeoutError)), start=1
        ):
            poster = Http1(limit=1, timeout=0.2, connect_timeout=connect_timeout)
            # The only connection stays taken by a body not read to its end, which no deadline
            # ends meanwhile (a post holding it would time out first and free it: a race).
            holder = await poster.stream(server.url, streamed)
            with pytest.raises(error) as raised:
                await poster.post_json(server.url, HEADERS, BODY)
            assert type(raised.value) is error
            assert sum(len(requests) for requests in server.connections) == held  # never written
            holder.release()
            poster.close()
    finally:
        await server.aclose()
