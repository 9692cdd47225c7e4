"""Huge bodies on /slack/events cost no memory: peak RSS of a real ingress process, measured.

On db5f0ba one unsigned 30 MB body raised the process's peak RSS from 97 MB to 860 MB.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.slack.signing import sign

pytestmark = pytest.mark.slow

SECRET = "memory-test-signing-secret-0123456789"
MIB = 1024 * 1024
MAX_PEAK_GROWTH = 20 * MIB


@pytest.fixture
def ingress() -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ingress_process", SECRET],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        yield child
    finally:
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def peak_rss(pid: int) -> int:
    """VmHWM: the process's peak resident set size so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def post(
    port: int, headers: dict[str, str], size: int, *, chunked: bool, fill: bytes = b"a"
) -> int:
    """POST a `size`-byte body, streamed; stop sending once the answer arrives. The status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
    head = {"Host": "bridge.test", **headers, **framing}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    writer.write(f"POST /slack/events HTTP/1.1\r\n{lines}\r\n".encode())
    answer = asyncio.ensure_future(reader.readline())
    piece = fill * (64 * 1024)
    sent = 0
    try:
        while sent < size and not answer.done():
            chunk = piece[: size - sent]
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await writer.drain()
            sent += len(chunk)
        if chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed while the body was still coming
    status_line = await asyncio.wait_for(answer, timeout=30)
    writer.close()
    return int(status_line.split()[1])


def signed_headers(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SECRET, stamp, body),
    }


async def test_thirty_megabyte_bodies_and_a_signed_two_megabyte_one_cost_no_memory(
    ingress: subprocess.Popen[str],
) -> None:
    assert ingress.stdout is not None
    port = int(await asyncio.wait_for(asyncio.to_thread(ingress.stdout.readline), timeout=30))
    # Warm every code path first (Bolt, the verifier), so the baseline is the working size.
    challenge = json.dumps({"type": "url_verification", "challenge": "c", "token": "t"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = signed_headers(challenge) | {"Content-Length": str(len(challenge)), "Host": "b"}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    writer.write(f"POST /slack/events HTTP/1.1\r\n{lines}\r\n".encode() + challenge)
    assert b" 200 " in await asyncio.wait_for(reader.readline(), timeout=30)
    writer.close()
    before = peak_rss(ingress.pid)

    unsigned = {"Content-Type": "application/json"}
    declared = await post(port, unsigned, 30_000_000, chunked=False)
    streamed = await post(port, unsigned, 30_000_000, chunked=True, fill=b"a=1&")
    # Signed headers cannot cover a streamed body we do not hold; sign a 2 MB one we do.
    body = b'{"type": "event_callback", "event": {"text": "' + b"a" * 2_000_000 + b'"}}'
    signed_big = await post_body(port, signed_headers(body), body)
    growth = peak_rss(ingress.pid) - before

    print(f"peak RSS {before / MIB:.1f} MiB, grew by {growth / MIB:.1f} MiB")
    assert growth < MAX_PEAK_GROWTH, f"peak RSS grew by {growth / MIB:.1f} MiB"
    assert (declared, streamed, signed_big) == (413, 413, 413)
    assert ingress.poll() is None


async def post_body(port: int, headers: dict[str, str], body: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = {**headers, "Content-Length": str(len(body)), "Host": "bridge.test"}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    writer.write(f"POST /slack/events HTTP/1.1\r\n{lines}\r\n".encode())
    try:
        writer.write(body)
        await writer.drain()
    except ConnectionError:
        pass
    status_line = await asyncio.wait_for(reader.readline(), timeout=30)
    writer.close()
    return int(status_line.split()[1])
