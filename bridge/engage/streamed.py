"""A streamed answer, read through httpx or sent the lean way: one shape for `EngageHttp.stream`.

The lean way is `bridge.http1` for a POST whose head it sends (the chat stream: `Http1Streamed`),
else the aiohttp session (`LeanStreamed`).

`async with streamed as response`: the response's head has arrived; `payloads()` reads a 2xx
body's message objects, `read()` a failure's whole body; leaving the block releases the
connection (to the pool when the body was read to its end, else closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import httpx

from bridge.engage.aiohttp_transport import as_httpx, httpx_response
from bridge.engage.lean import Lean, Reply, plain
from bridge.engage.posts import httpx_headers
from bridge.engage.sse import event_reader, iter_payloads, payloads_from

if TYPE_CHECKING:
    from bridge.engage.transport import Answer
    from bridge.http1 import Stream


class Streamed(Protocol):
    @property
    def is_success(self) -> bool: ...
    async def __aenter__(self) -> Streamed: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    def payloads(self) -> AsyncIterator[dict[str, Any]]: ...
    async def read(self) -> Answer: ...


class HttpxStreamed:
    """`httpx.AsyncClient.stream(...)`'s response."""

    def __init__(self, opening: AbstractAsyncContextManager[httpx.Response]) -> None:
        self._opening = opening
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> HttpxStreamed:
        self._response = await self._opening.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._opening.__aexit__(*exc_info)

    @property
    def response(self) -> httpx.Response:
        assert self._response is not None
        return self._response

    @property
    def is_success(self) -> bool:
        return self.response.is_success

    def payloads(self) -> AsyncIterator[dict[str, Any]]:
        return iter_payloads(self.response)

    async def read(self) -> Answer:
        await self.response.aread()
        return self.response


class LeanStreamed:
    """An aiohttp response to a request `Lean` sent; a body that is not plain goes to httpx."""

    def __init__(self, lean: Lean, response: aiohttp.ClientResponse) -> None:
        self._lean = lean
        self._response = response

    async def __aenter__(self) -> LeanStreamed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._response.release()

    @property
    def is_success(self) -> bool:
        return 200 <= self._response.status < 300

    def payloads(self) -> AsyncIterator[dict[str, Any]]:
        headers = self._response.headers
        if not plain(headers):
            return iter_payloads(httpx_response(self._response))
        reader = event_reader(headers.get("content-type", ""), lambda: "utf-8")
        return payloads_from(self._next_chunk, reader)

    async def _next_chunk(self) -> bytes:
        with as_httpx:
            return await self._response.content.readany()

    async def read(self) -> Answer:
        return await self._lean.whole(self._response)


async def lean_streamed(
    lean: Lean, method: str, url: httpx.URL | str, kwargs: Mapping[str, Any]
) -> Streamed:
    """The request sent the lean way: over `bridge.http1` if it takes it, else aiohttp."""
    if method == "POST":
        stream = await lean.stream_post(url, kwargs)
        if stream is not None:
            return Http1Streamed(stream)
    return LeanStreamed(lean, await lean.open(method, url, kwargs))


class Http1Streamed:
    """A `bridge.http1` stream; a body that is not plain goes to httpx to decode."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    async def __aenter__(self) -> Http1Streamed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stream.release()

    @property
    def is_success(self) -> bool:
        return 200 <= self._stream.status < 300

    def payloads(self) -> AsyncIterator[dict[str, Any]]:
        stream = self._stream
        headers = stream.headers
        if not plain(headers):
            raw = httpx.Response(
                stream.status, headers=list(headers.items()), stream=Http1ByteStream(stream)
            )
            return iter_payloads(raw)
        reader = event_reader(headers.get("content-type", ""), lambda: "utf-8")
        return payloads_from(self._next_chunk, reader)

    async def _next_chunk(self) -> bytes:
        with as_httpx:
            return await self._stream.next_chunk()

    async def read(self) -> Answer:
        stream = self._stream
        with as_httpx:
            body = await stream.read()
        if plain(stream.headers):
            return Reply(stream.status, stream.headers, body)
        return httpx.Response(stream.status, headers=httpx_headers(stream.headers), content=body)


class Http1ByteStream(httpx.AsyncByteStream):
    """The raw (still encoded) body of a `bridge.http1` stream; httpx decodes it."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def __aiter__(self) -> Http1ByteStream:
        return self

    async def __anext__(self) -> bytes:
        with as_httpx:
            chunk = await self._stream.next_chunk()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._stream.release()
