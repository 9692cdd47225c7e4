"""The one HTTP server: /healthz, /readyz, /metrics, adapters' routes and the mounted emulator."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from bridge.admission import Admission, CountIngress
from bridge.eager import EagerStarts
from bridge.errors import ConfigError
from bridge.guard import Endpoint, IngressGuard
from bridge.metrics import Metrics

log = logging.getLogger(__name__)

# component name -> "ok", or what is wrong with it
ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]
MetricsRefresh = Callable[[], Awaitable[None]]

_GRACEFUL_SHUTDOWN_SECONDS = 5
# An idle kept-alive connection is closed after this; a proxy in front should reuse upstream
# connections for less (e.g. nginx `keepalive_timeout 4s` in the upstream block).
KEEP_ALIVE_SECONDS = 5
# Request line + headers; larger is answered 400. Slack's and browsers' are ~1-4 KiB.
MAX_HEAD_BYTES = 16 * 1024
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_HEAD_TIMEOUT_SECONDS = 10.0
_HEAD_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)
# Sent with the connection cap's 503: the cap frees as soon as requests in flight end, so a
# client (Slack retries anyway; a desk's webhook or a proxy may not) can come back soon.
RETRY_AFTER_SECONDS = 1
_UNAVAILABLE_HEAD = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"19"),
    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    (b"connection", b"close"),
]
# A mounted app (the emulator) takes the bridge's own chat calls: a turn's batch of messages.
MOUNTED_APP_LIMIT = 8 * 1024 * 1024


class DirectRoute(Route):
    """A POST route that `create_app` serves past Starlette's error and exception middleware and
    its router: a POST to exactly its path goes through the bridge's own middleware (ingress
    count, guard) straight to the endpoint. For a platform's event ingress, whose guarded
    endpoint answers every request itself (refusals 4xx, its own failures 4xx/5xx); a crash is
    still a 500, uvicorn's. Other methods and paths take the app's usual way.

    Those layers cost a Slack ack ~20 of the app's ~55 µs of CPU and did nothing for it
    (bench/ack_path.py).
    """

    def __init__(self, path: str, endpoint: Endpoint) -> None:
        super().__init__(path, endpoint, methods=["POST"])


class _BridgeApp(Starlette):
    def __init__(self, direct: Mapping[str, ASGIApp], **options: Any) -> None:
        super().__init__(**options)
        self._direct = dict(direct)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            app = self._direct.get(scope["path"])
            if app is not None:
                await app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _serve(endpoint: Endpoint) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


def create_app(
    *,
    metrics: Metrics,
    readiness: ReadinessCheck,
    refresh_metrics: MetricsRefresh | None = None,
    routes: Sequence[BaseRoute] = (),
    mounts: Mapping[str, Starlette] | None = None,
    admission: Admission | None = None,
) -> Starlette:
    """Build the ASGI app; the bridge's own endpoints come first so no adapter can shadow them.

    Every route sits behind `bridge.guard.IngressGuard`; routes that take a body wrap their
    endpoint in `bridge.guard.guarded` (own cap, media type, signature on the raw bytes). A
    `DirectRoute` is served past Starlette's own middleware and router.
    """
    mounted = dict(mounts or {})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await readiness()
        ready = all(v == "ok" for v in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_endpoint(request: Request) -> Response:
        if refresh_metrics is not None:
            try:
                await refresh_metrics()
            except Exception:
                # A stale gauge is better than no metrics at all while Redis is down.
                log.warning("could not refresh metrics before a scrape", exc_info=True)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Starlette does not run the lifespan of mounted apps; the emulator may need its own.
        async with contextlib.AsyncExitStack() as stack:
            for sub_app in mounted.values():
                await stack.enter_async_context(sub_app.router.lifespan_context(sub_app))
            yield

    all_routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *routes,
        *(Mount(prefix, app=sub_app) for prefix, sub_app in mounted.items()),
    ]
    # Outermost: every request's body is capped and timed before any route sees it.
    limits = dict.fromkeys(mounted, MOUNTED_APP_LIMIT)
    guard = Middleware(IngressGuard, limits=limits)
    middleware = [guard]
    direct: dict[str, ASGIApp] = {}
    for route in routes:
        if isinstance(route, DirectRoute):
            direct[route.path] = IngressGuard(_serve(route.endpoint), limits=limits)
    if admission is not None:  # the workers' own calls to a mounted app are not ingress
        skip = tuple(mounted)
        middleware.insert(0, Middleware(CountIngress, admission=admission, skip=skip))
        direct = {path: CountIngress(app, admission, skip) for path, app in direct.items()}
    return _BridgeApp(direct, routes=all_routes, lifespan=lifespan, middleware=middleware)


def url_for(host: str, port: int) -> str:
    """The URL a local client uses to reach a server bound to `host`:`port`."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now, so the URL (an ephemeral port too) is known before the app is built."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it. Without it a reused connection's response waits ~40 ms for
        # a delayed ACK (uvicorn writes head and body separately); asyncio sets it per transport
        # only when the socket's proto says TCP, so it is not left to that.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(set ENGAGE_BRIDGE_HTTP_PORT to another port, or 0 for any free one)"
        ) from exc
    sock.setblocking(False)
    return sock


class _HeadDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline and a size cap for a request's head.

    The clock starts when the connection opens or when the first byte of a kept-alive
    connection's next request arrives, and stops once the head is complete; the body has the
    ingress guard's own deadline. A dribbling client is answered 408 and dropped, a silent one
    is dropped: neither holds a connection slot for longer than the deadline. uvicorn caps no
    head with httptools: one still incomplete after `MAX_HEAD_BYTES` is answered 400 and
    dropped (as h11's cap did, a head that arrives whole in one read of at most 256 KiB passes).
    httptools rather than h11: the server's CPU per request 160-195 -> 75-90 µs on asyncio's
    loop, 50-55 µs on uvloop (bench/bench_http_parser.py). A request read in `data_received`
    starts eagerly (`bridge.eager`): it runs up to its first wait in the same callback, not a
    whole loop iteration later.
    """

    head_timeout = DEFAULT_HEAD_TIMEOUT_SECONDS
    _head_timer: asyncio.TimerHandle | None = None
    _in_head = True  # also between requests: the next byte begins the next head
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)
        self._starts = EagerStarts()
        self._parsing = False

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        self._parsing = True
        try:
            super().data_received(data)  # the parser's callbacks below run inside
        finally:
            self._parsing = False
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            log.info(
                "request head over the cap: 400",
                extra={"client": self.client, "max_bytes": MAX_HEAD_BYTES},
            )
            self.send_400_response("Request head too large.")
        # Requests read now run up to their first wait at once (their bodies are parsed by now,
        # outside the parser's callbacks), not a whole loop iteration later.
        self._starts.run()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if app is service_unavailable:  # uvicorn's 503 over the cap has no Retry-After
            app = _unavailable
        if not self._parsing or self.config.reset_contextvars:
            super()._start_asgi_task(cycle, app)  # a pipelined request, started by a response
            return
        task = self._starts.create_task(self.loop, cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes:
            log.info(
                "request head not complete in time: 408",
                extra={"client": self.client, "timeout_seconds": self.head_timeout},
            )
            self.transport.write(_HEAD_TIMEOUT_RESPONSE)
        self.transport.close()


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's answer beyond `limit_concurrency`, with a Retry-After."""
    await send({"type": "http.response.start", "status": 503, "headers": _UNAVAILABLE_HEAD})
    await send({"type": "http.response.body", "body": b"Service Unavailable", "more_body": False})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runtime owns SIGINT/SIGTERM and stops the server itself; uvicorn's handler would
        # re-raise the signal after shutdown and kill the process before the rest is closed.
        yield


class HttpServer:
    """uvicorn on a socket bound at construction; `start(app)` serves, `stop()` ends it.

    At most `max_connections` connections and requests in flight (uvicorn's
    `limit_concurrency`): a request beyond it gets `503` at once with `Retry-After: 1`, which
    Slack and the desks retry.
    A request's head must arrive within `head_timeout` seconds.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT_SECONDS,
    ) -> None:
        self._max_connections = max_connections
        self._protocol = type("HeadDeadline", (_HeadDeadline,), {"head_timeout": head_timeout})
        self._socket = bind_socket(host, port)
        self.port = int(self._socket.getsockname()[1])
        self.url = url_for(host, self.port)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def start(self, app: Starlette) -> None:
        config = uvicorn.Config(
            app,
            log_config=None,  # keep the bridge's structured logging
            lifespan="on",
            server_header=False,
            http=self._protocol,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            limit_concurrency=self._max_connections,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._serve(), name="http-server")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise ConfigError(f"the HTTP server on {self.url} stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("serving HTTP", extra={"url": self.url})

    async def _serve(self) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[self._socket])
        except SystemExit as exc:  # uvicorn's answer to a failed app start-up
            raise ConfigError(f"the HTTP app failed to start (exit {exc.code})") from None

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is not None and task is not None and not task.done():
            server.should_exit = True
            with contextlib.suppress(Exception):
                await task
        self._socket.close()
