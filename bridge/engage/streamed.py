"""A streamed answer, read through httpx or sent the lean way: one shape for `EngageHttp.stream`.

`async with streamed as response`: the response's head has arrived; `payloads()` reads a 2xx
body's message objects, `read()` a failure's whole body; leaving the block releases the
connection (to the pool when the body was read to its end, else closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import httpx

from bridge.engage.aiohttp_transport import as_httpx, httpx_response
from bridge.engage.lean import Lean, plain
from bridge.engage.sse import event_reader, iter_payloads, payloads_from

if TYPE_CHECKING:
    from bridge.engage.transport import Answer


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
