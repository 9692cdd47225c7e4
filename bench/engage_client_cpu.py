"""CPU of the Engage client's own layers per turn (create + chat_stream), without the network.

    .venv/bin/python -m bench.engage_client_cpu [--turns 1000] [--repeats 12] [--chat]
    .venv/bin/python -m bench.engage_client_cpu --url http://127.0.0.1:PORT  # an emulator

`EngageClient` as the bridge builds it, over a transport that answers at once with canned
bytes (a created conversation; a chat stream of a status and an agent event, then `[DONE]`, in
two pieces), on uvloop: what is left is httpx's request and response machinery, our request
preparation, SSE reading and pydantic, which a whole-process run cannot resolve apart from
aiohttp and the loop. Prints the best of `--repeats` rounds (CPU time per turn, in us): on a
shared machine the minimum is the steadiest figure. With `--url` the client is the bridge's own
(aiohttp transport included) against a running emulator over loopback: this process's CPU is
the whole client's, the server's is the emulator's. For A/B, run it from each checkout with
PYTHONPATH set to that checkout, alternating.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator

import httpx

from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID
from bridge.engage.client import EngageClient
from bridge.engage.models import UserMessage
from bridge.eventloop import run

NOW = "2026-12-05T22:00:00.000000Z"
CONVERSATION_ID = "conv_" + "a" * 24


def message(role: str, content: str, number: int) -> dict[str, object]:
    return {
        "id": f"msg_{number:024d}", "org_id": "org_x", "conversation_id": CONVERSATION_ID,
        "run_id": "run_" + "b" * 24, "role": role, "content": content, "name": "parrot",
        "user_id": "user_1", "created": NOW,
    }  # fmt: skip


CREATED = json.dumps(
    {"id": CONVERSATION_ID, "org_id": "org_x", "user_id": "user_1", "source": "bench",
     "data": {"bench": True}, "created": NOW, "summary": "", "tags": [], "is_saved": False}
).encode()  # fmt: skip
EVENTS = [message("status", "Thinking", 1), message("agent", "hello", 2)]
STREAM = b"".join(b"data: %s\n\n" % json.dumps(e).encode() for e in EVENTS) + b"data: [DONE]\n\n"


class Pieces(httpx.AsyncByteStream):
    def __init__(self, *pieces: bytes) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


class Canned(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.url.path.endswith("/chat"):
            half = len(STREAM) // 2
            headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
            return httpx.Response(200, headers=headers, stream=Pieces(STREAM[:half], STREAM[half:]))
        length = b"%d" % len(CREATED)
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        return httpx.Response(201, headers=headers, stream=Pieces(CREATED))


async def measure(turns: int, repeats: int, stream: bool, url: str | None) -> float:
    # A URL: the client as the bridge builds it (its own transport), against that server.
    how = {"base_url": url} if url else {"base_url": "http://127.0.0.1:8080", "transport": Canned()}
    key, org = (DEFAULT_API_KEY, DEFAULT_ORG_ID) if url else ("k" * 32, "org_x")
    async with EngageClient(api_key=key, org_id=org, **how) as client:  # type: ignore[arg-type]

        async def turn() -> None:
            created = await client.create_conversation(data={"bench": True}, source="bench")
            said = [UserMessage(content="hello")]
            if stream:
                async for _ in client.chat_stream(created.id, said, agent="parrot"):
                    pass
            else:
                await client.chat(created.id, said, agent="parrot")

        for _ in range(300):
            await turn()
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(turns):
                await turn()
            best = min(best, (time.process_time() - started) / turns)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--chat", action="store_true", help="chat instead of chat_stream")
    parser.add_argument("--url", help="an emulator's URL (`engage-bridge emulator`): the whole "
                        "client, its aiohttp transport included, over loopback")  # fmt: skip
    args = parser.parse_args()
    stream = not args.chat
    best = run(measure(args.turns, args.repeats, stream, args.url), use_uvloop=True)
    how = "chat_stream" if stream else "chat"
    where = f"the emulator at {args.url}" if args.url else "canned transport"
    print(f"{best:.1f} us CPU per create + {how} (client, {where}, best round)")


if __name__ == "__main__":
    main()
