"""The HTTP surface on real uvicorn: health, readiness, metrics, adapter routes, mounts."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bridge.admission import Admission, after_ack
from bridge.errors import ConfigError
from bridge.guard import guarded
from bridge.http import DirectRoute, HttpServer, bind_socket, create_app, url_for
from bridge.metrics import Metrics


class Checks:
    def __init__(self) -> None:
        self.state = {"redis": "ok", "workers": "ok"}

    async def __call__(self) -> dict[str, str]:
        return dict(self.state)


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    server = HttpServer("127.0.0.1", 0)
    await server.start(app)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            yield client
    finally:
        await server.stop()


async def test_healthz_answers_while_the_process_is_alive() -> None:
    app = create_app(metrics=Metrics(), readiness=Checks())
    async with serving(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_with_the_failing_check_named() -> None:
    checks = Checks()
    app = create_app(metrics=Metrics(), readiness=checks)
    async with serving(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        checks.state["redis"] = "ConnectionError: refused"
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "ConnectionError: refused"
    assert response.json()["status"] == "not ready"


async def test_metrics_are_refreshed_on_each_scrape() -> None:
    metrics = Metrics()
    depth = iter([3, 7])

    async def refresh() -> None:
        metrics.queue_depth.set(next(depth))

    app = create_app(metrics=metrics, readiness=Checks(), refresh_metrics=refresh)
    async with serving(app) as client:
        first = await client.get("/metrics")
        second = await client.get("/metrics")
    assert first.headers["content-type"].startswith("text/plain")
    assert "bridge_queue_depth 3.0" in first.text
    assert "bridge_queue_depth 7.0" in second.text
    assert "bridge_messages_in_total" in first.text


async def test_metrics_still_render_when_the_refresh_fails() -> None:
    async def refresh() -> None:
        raise ConnectionError("redis down")

    app = create_app(metrics=Metrics(), readiness=Checks(), refresh_metrics=refresh)
    async with serving(app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "bridge_queue_depth" in response.text


async def test_adapter_routes_are_served_but_cannot_shadow_health() -> None:
    async def hook(request: Request) -> Response:
        return PlainTextResponse("hooked")

    routes = [Route("/slack/events", hook, methods=["POST"]), Route("/healthz", hook)]
    app = create_app(metrics=Metrics(), readiness=Checks(), routes=routes)
    async with serving(app) as client:
        assert (await client.post("/slack/events")).text == "hooked"
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_a_direct_route_skips_starlettes_layers_not_the_count_the_caps_or_the_ack_work() -> (
    None
):
    admission = Admission(late_after=0.5)
    seen: list[object] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        if body == b"crash":
            raise RuntimeError("a bug")

        async def after() -> None:
            seen.append(("after the ack", admission.busy))

        after_ack(after)
        seen.append(("router" in request.scope, admission.busy, body))
        return PlainTextResponse("hooked")

    routes = [DirectRoute("/slack/events", guarded(hook, limit=100))]
    app = create_app(metrics=Metrics(), readiness=Checks(), routes=routes, admission=admission)
    async with serving(app) as client:
        hooked = await client.post("/slack/events", content=b"hi")
        assert (hooked.status_code, hooked.text) == (200, "hooked")
        assert seen == [(False, 1, b"hi"), ("after the ack", 0)]
        over_route = await client.post("/slack/events", content=b"x" * 101)
        assert over_route.json() == {"error": "body larger than 100 bytes"}
        over_app = await client.post("/slack/events", content=b"x" * (2 * 1024 * 1024))
        assert over_app.json() == {"error": "body larger than 1048576 bytes"}
        assert (await client.get("/slack/events")).status_code == 405
        assert (await client.post("/slack/events/")).status_code in (307, 404)
        assert (await client.post("/slack/events", content=b"crash")).status_code == 500
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert admission.busy == 0


async def test_mounted_app_is_served_under_its_prefix_with_its_lifespan() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    async def whoami(request: Request) -> Response:
        return PlainTextResponse(request.url.path)

    sub_app = Starlette(routes=[Route("/v1/users/me", whoami)], lifespan=lifespan)
    app = create_app(metrics=Metrics(), readiness=Checks(), mounts={"/emulator": sub_app})
    async with serving(app) as client:
        response = await client.get("/emulator/v1/users/me")
        assert events == ["start"]
    assert response.status_code == 200
    assert events == ["start", "stop"]


def test_a_busy_port_is_a_config_error_naming_the_setting() -> None:
    taken = bind_socket("127.0.0.1", 0)
    taken.listen()
    try:
        with pytest.raises(ConfigError, match="ENGAGE_BRIDGE_HTTP_PORT"):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:80"),
        ("::", "http://[::1]:80"),
        ("::1", "http://[::1]:80"),
        ("localhost", "http://localhost:80"),
    ],
)
def test_url_for_a_wildcard_bind_is_a_loopback_url(host: str, url: str) -> None:
    assert url_for(host, 80) == url


async def test_stop_releases_the_port() -> None:
    server = HttpServer("127.0.0.1", 0)
    await server.start(create_app(metrics=Metrics(), readiness=Checks()))
    await server.stop()
    again = bind_socket("127.0.0.1", server.port)
    again.close()


def test_connections_accepted_on_the_bound_socket_do_not_wait_for_delayed_acks() -> None:
    listener = bind_socket("127.0.0.1", 0)
    listener.setblocking(True)
    listener.listen()
    with contextlib.closing(listener), socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
