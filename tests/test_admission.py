"""Acks first: new turns wait while the process answers platform requests, never forever."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from bridge.admission import Admission, CountIngress
from bridge.engage.client import EngageClient
from tests.fixtures_core import (
    RecordingAdapter,
    core_settings,
    make_bridge,
    message,
    running,
    wait_until,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_without_late_acks_new_work_starts_a_batch_at_a_time() -> None:
    clock = Clock()
    admission = Admission(late_after=1.0, batch=4, period=60.0, crowd=1, clock=clock)
    assert await admission.allowed(100) == 4
    with admission.ingress():
        clock.now += 0.5  # in flight, but not late
        assert await admission.allowed(3) == 3


async def test_new_work_waits_while_an_ack_is_late_and_goes_once_it_is_sent() -> None:
    clock = Clock()
    admission = Admission(late_after=1.0, batch=4, period=60.0, crowd=1, clock=clock)
    with admission.ingress():
        clock.now += 0.5
        with admission.ingress():  # a younger request
            clock.now += 0.7  # the first one is late now
            assert admission.late()
            allowed = asyncio.create_task(admission.allowed(100))
            await wait_until(lambda: admission.waiting == 1)
        await asyncio.sleep(0)
        assert not allowed.done()  # the younger one left; the late one is still in flight
    assert await allowed == 4
    assert admission.busy == 0
    assert admission.waiting == 0


async def test_a_few_slow_requests_are_not_late_acks_a_crowd_is() -> None:
    clock = Clock()
    admission = Admission(late_after=1.0, batch=4, period=60.0, crowd=3, clock=clock)
    with admission.ingress(), admission.ingress():
        clock.now += 5.0  # two requests slow for their own I/O (a file download)
        assert not admission.late()
        assert await admission.allowed(100) == 4
        with admission.ingress():
            assert admission.late()


async def test_acks_that_stay_late_still_let_a_batch_start_every_period() -> None:
    clock = Clock()
    admission = Admission(late_after=1.0, batch=4, period=0.01, crowd=1, clock=clock)
    with admission.ingress():
        clock.now += 5.0
        assert await admission.allowed(100) == 4
        assert await admission.allowed(2) == 2


async def test_a_zero_late_after_turns_the_gate_off() -> None:
    clock = Clock()
    admission = Admission(late_after=0.0, batch=4, period=60.0, crowd=1, clock=clock)
    with admission.ingress():
        clock.now += 5.0
        assert not admission.late()
        assert await admission.allowed(100) == 100


async def test_posted_requests_count_as_ingress_but_the_mounted_emulator_does_not() -> None:
    admission = Admission(late_after=1.0, batch=4)
    seen: list[int] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        await request.body()
        seen.append(admission.busy)
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/x", endpoint, methods=["POST"])])
    slack = Route("/slack/events", endpoint, methods=["POST"])
    app = Starlette(routes=[slack, Mount("/emulator", app=inner)])
    counted = CountIngress(app, admission, skip=("/emulator",))
    transport = httpx.ASGITransport(app=counted)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/slack/events", content=b"{}")).status_code == 200
        assert (await client.post("/emulator/x", content=b"{}")).status_code == 200
    assert seen == [1, 0]
    assert admission.busy == 0


async def test_a_request_counts_only_once_its_body_has_arrived() -> None:
    admission = Admission(late_after=1.0, batch=4)
    rest_of_body = asyncio.Event()
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            seen.append(admission.busy)
        seen.append(admission.busy)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    chunks = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.request", "body": b"}", "more_body": False},
    ]

    async def trickle() -> dict[str, Any]:
        if len(chunks) == 1:
            await rest_of_body.wait()  # a slow sender: the last chunk comes later
        return chunks.pop(0)

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "POST", "path": "/slack/events", "headers": []}
    request = asyncio.create_task(CountIngress(app, admission)(scope, trickle, send))
    await wait_until(lambda: seen == [0])
    assert admission.busy == 0  # still waiting for its body
    rest_of_body.set()
    await request
    assert seen == [0, 1]
    assert admission.busy == 0


async def test_a_stored_message_waits_while_an_ack_is_late_then_is_answered(
    redis_client: aioredis.Redis, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    settings = core_settings(ack_first_seconds=0.001)  # any request in flight is late at once
    bridge = make_bridge(redis_client, engage_client, adapter, settings)
    bridge.admission.period = 60.0  # no batch starts anyway while the test looks
    bridge.admission.crowd = 1
    async with running(bridge):
        with bridge.admission.ingress():  # a platform request still waiting for its ack
            await wait_until(lambda: bridge.admission.waiting == 1)
            await bridge.submit(message(text="first"))
            assert await bridge.queue_depth() >= 1  # stored, not yet answered
            assert adapter.sent == []
            assert adapter.statuses == []
        await wait_until(lambda: len(adapter.sent) == 1)
    assert adapter.texts() == ["You said: first"]
