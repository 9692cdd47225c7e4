"""How often one chat reaches a server that fails it, per httpx transport (our aiohttp one, the
httpx-aiohttp package's, httpcore's): a chat sent twice is a duplicate agent turn.

    .venv/bin/python -m bench.transport_check     # needs httpx-aiohttp installed

Each server reads the whole chat request, then fails it in one way; the client is `EngageClient`
with 3 tries. A correct transport lets the client see "sent, outcome unknown" (1 request, then
`ChatOutcomeUnknown`); a transport that reports such a failure as a connect error makes the
client repeat the chat.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

import httpx

from bridge.engage.aiohttp_transport import AiohttpTransport
from bridge.engage.client import EngageClient
from bridge.engage.errors import EngageError
from bridge.engage.models import UserMessage
from bridge.engage.retry import RetryPolicy
from tests.test_engage_aiohttp_transport import Respond, raw_server

TRIES = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)


async def drop(head: bytes, body: bytes) -> bytes | None:
    return None  # read the request, close without a reply


async def half_body(head: bytes, body: bytes) -> bytes:
    # Promises 100 bytes, sends 10; the server's handler then closes the connection.
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{"


async def stall(head: bytes, body: bytes) -> bytes | None:
    await asyncio.sleep(3600)
    return None


FAILURES: dict[str, Respond] = {
    "connection closed after the request": drop,
    "body cut off mid-response": half_body,
    "no answer (read timeout)": stall,
}


def transports() -> dict[str, Callable[[], httpx.AsyncBaseTransport]]:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    found: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
        "ours (bridge/engage/aiohttp_transport.py)": lambda: AiohttpTransport(limits=limits),
        "httpcore (httpx default)": lambda: httpx.AsyncHTTPTransport(limits=limits),
    }
    if importlib.util.find_spec("httpx_aiohttp") is not None:
        import httpx_aiohttp

        found["httpx-aiohttp 0.2.0"] = lambda: httpx_aiohttp.AiohttpTransport(limits=limits)
    return found


async def sent(transport: httpx.AsyncBaseTransport, respond: Respond) -> tuple[int, str]:
    """Requests the server received for one chat, and what the caller got."""
    timeout = httpx.Timeout(1.0, connect=1.0)
    async with raw_server(respond, close_after_reply=True) as server:
        http = httpx.AsyncClient(transport=transport, timeout=timeout)
        client = EngageClient(base_url=server.url, api_key="k", org_id="o", http=http, retry=TRIES)
        try:
            await client.chat("c1", [UserMessage(content="once")], agent="parrot")
            outcome = "answer"
        except EngageError as exc:
            outcome = type(exc).__name__
        finally:
            await http.aclose()
        return len(server.requests), outcome


async def main() -> None:
    for name, build in transports().items():
        for failure, respond in FAILURES.items():
            count, outcome = await sent(build(), respond)
            verdict = "ok" if count == 1 else "SENT TWICE" if count == 2 else f"SENT {count}x"
            print(f"{name:<44} {failure:<38} chat sent {count}x -> {outcome:<20} {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
