"""The ingress guard: caps before reading, read deadline, verify before parse, 4xx not 5xx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from bridge.guard import (
    BadSignature,
    GuardRejected,
    IngressGuard,
    Unprocessable,
    form_fields,
    guarded,
    guarded_raw,
    json_object,
)

LIMIT = 1000


def only_signed_by(secret: bytes) -> object:
    def verify(headers: Headers, body: bytes, now: float) -> None:
        if headers.get("x-sig") != secret.decode() + str(len(body)):
            raise BadSignature("signature does not match")

    return verify


class Calls:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def echo_raw(self, request: Request, raw: bytes) -> Response:
        self.bodies.append(raw)
        payload = json_object(raw)
        return JSONResponse({"name": payload["name"], "path": request.url.path})

    async def echo(self, request: Request) -> Response:
        raw = await request.body()
        self.bodies.append(raw)
        payload = json_object(raw)
        if "name" not in payload:
            raise Unprocessable("name is required")
        return JSONResponse({"name": payload["name"], "again": (await request.json())["name"]})


def build(calls: Calls, *, read_timeout: float = 10.0) -> Starlette:
    async def crash(request: Request) -> Response:
        await request.body()
        raise RuntimeError("a mounted app's bug")

    sub = FastAPI()
    sub.add_api_route("/crash", crash, methods=["POST"])
    routes = [
        Route(
            "/signed",
            guarded(calls.echo, verify=only_signed_by(b"k"), limit=LIMIT),  # type: ignore[arg-type]
            methods=["POST"],
        ),
        Route(
            "/json",
            guarded(calls.echo, limit=LIMIT, media_types={"application/json"}),
            methods=["POST"],
        ),
        Route(
            "/raw",
            guarded_raw(calls.echo_raw, verify=only_signed_by(b"k"), limit=LIMIT),  # type: ignore[arg-type]
            methods=["POST"],
        ),
        Route("/plain", calls.echo, methods=["POST"]),
        Mount("/sub", app=sub),
    ]
    guard = Middleware(IngressGuard, limit=4 * LIMIT, read_timeout=read_timeout)
    return Starlette(routes=routes, middleware=[guard])


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def client(calls: Calls) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build(calls), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://guard.test") as http:
        yield http


async def chunked(raw: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


async def test_a_signed_valid_body_reaches_the_endpoint_which_reads_it_as_usual(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    raw = b'{"name": "ok"}'
    response = await client.post("/signed", content=raw, headers={"x-sig": f"k{len(raw)}"})
    assert response.status_code == 200
    assert response.json() == {"name": "ok", "again": "ok"}
    assert calls.bodies == [raw]


@pytest.mark.parametrize(
    ("path", "headers", "raw", "status"),
    [
        ("/signed", {}, b'{"name": "x"}', 401),
        ("/signed", {"x-sig": "k2"}, b'{"name": "x"}', 401),
        ("/json", {"content-type": "text/plain"}, b'{"name": "x"}', 415),
        ("/json", {"content-type": "application/json"}, b'{"name": ', 400),
        ("/json", {"content-type": "application/json"}, b"[1, 2]", 400),
        ("/json", {"content-type": "application/json"}, b"\xff\xfe", 400),
        ("/json", {"content-type": "application/json"}, b"[" * 999, 400),
        ("/json", {"content-type": "application/json"}, b"[" * 1001, 413),
        ("/json", {"content-type": "application/json"}, b"{}", 422),
    ],
)
async def test_bad_input_is_a_4xx_and_the_endpoint_never_runs_before_verification(
    client: httpx.AsyncClient,
    calls: Calls,
    path: str,
    headers: dict[str, str],
    raw: bytes,
    status: int,
) -> None:
    response = await client.post(path, content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    if status in (401, 413, 415):
        assert calls.bodies == []


async def test_deep_nesting_within_the_cap_is_400_not_a_recursion_error() -> None:
    with pytest.raises(GuardRejected) as refused:
        json_object(b"[" * 100_000)
    assert refused.value.status == 400


async def test_a_declared_length_over_the_cap_is_refused_before_any_byte_is_read(
    calls: Calls,
) -> None:
    read = 0

    async def receive() -> dict[str, object]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/plain",
        "raw_path": b"/plain",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(30 * 1024 * 1024).encode())],
        "scheme": "http",
        "server": ("guard.test", 80),
    }
    await IngressGuard(build(calls))(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert read == 0


async def test_a_chunked_body_over_the_cap_is_413_on_the_route_and_at_the_middleware(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    big = b"x" * (2 * LIMIT)
    on_route = await client.post("/signed", content=chunked(big), headers={"x-sig": "k"})
    huge = b"x" * (8 * LIMIT)
    unguarded_route = await client.post("/plain", content=chunked(huge))
    assert on_route.status_code == 413
    assert unguarded_route.status_code == 413
    assert calls.bodies == []


async def test_a_refusal_a_mounted_app_turns_into_a_500_is_answered_as_the_4xx(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/sub/crash", content=chunked(b"x" * (8 * LIMIT)))
    assert response.status_code == 413


async def test_a_body_that_does_not_arrive_in_time_is_408(
    calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"na'
        await never.wait()
        yield b'me": 1}'

    app = build(calls, read_timeout=0.05)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://guard.test") as http:
        with caplog.at_level(logging.WARNING, logger="bridge.guard"):
            response = await http.post("/plain", content=trickle())
    assert response.status_code == 408
    assert calls.bodies == []
    [line] = [r for r in caplog.records if r.name == "bridge.guard"]
    assert line.getMessage() == "refused POST /plain: 408 body not received in time"
    assert line.exc_info is None


def test_form_fields_refuse_bad_utf8_and_field_floods() -> None:
    assert form_fields(b"a=1&b=&a=2") == {"a": "2", "b": ""}
    for raw in (b"a=\xff", b"&".join(b"f%d=1" % n for n in range(2000))):
        with pytest.raises(GuardRejected) as refused:
            form_fields(raw)
        assert refused.value.status == 400


async def test_a_raw_endpoint_gets_the_checked_body_and_its_refusals_are_4xx(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    raw = b'{"name": "ok"}'
    response = await client.post("/raw", content=raw, headers={"x-sig": f"k{len(raw)}"})
    assert response.json() == {"name": "ok", "path": "/raw"}
    forged = await client.post("/raw", content=raw, headers={"x-sig": "k1"})
    assert forged.status_code == 401
    too_large = await client.post("/raw", content=b"{" * (LIMIT + 1), headers={"x-sig": "k1001"})
    assert too_large.status_code == 413
    not_json = await client.post("/raw", content=b"[", headers={"x-sig": "k1"})
    assert not_json.json() == {"error": "body is not JSON"}
    assert calls.bodies == [raw, b"["]
