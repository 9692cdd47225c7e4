"""The wiring: Redis, Engage Smarter, adapters, the core and the HTTP server, run per role.

`BridgeRuntime` builds whatever is not injected, starts the roles it is given and closes what
it built, in reverse order. A role task that ends on its own (`bridge/roles.py`) fails /readyz
at once and ends `wait()`, so `engage-bridge run` exits non-zero and the supervisor restarts
the process. Connecting to Redis is `bridge/redisconn.py`; finding and loading the enabled
adapters is `bridge/loader.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from bridge import restart
from bridge.adapter import Adapter, HttpAdapter
from bridge.admission import work_after_acks_done
from bridge.config import Role, Settings
from bridge.core import Bridge
from bridge.credentials import require_strong_secrets
from bridge.embedded import EmbeddedRedis
from bridge.engage.client import EngageClient
from bridge.engage.retry import RetryEvent
from bridge.errors import ConfigError, StorageUnavailable
from bridge.http import HttpServer, create_app
from bridge.loader import NeedsRedis, build_adapters, load_adapter
from bridge.metrics import Metrics
from bridge.redisconn import accepts_writes, connect_redis, ping, redis_limits
from bridge.roles import RoleTasks
from bridge.threadmap import RedisClient

if TYPE_CHECKING:
    from bridge.emulator.store import SqliteStore

log = logging.getLogger(__name__)

# Accept signs cut loose from a request the server cancelled at shutdown: each is bounded by
# Outbound's own 5 s, so they are done by then.
_AFTER_ACK_SECONDS = 6.0


class BridgeRuntime:
    """`async with BridgeRuntime(settings) as rt:` everything runs; leaving the block stops it."""

    def __init__(
        self,
        settings: Settings,
        *,
        adapters: Sequence[Adapter] | None = None,
        also: Sequence[Adapter] = (),
        listen: Collection[str] | None = None,
        redis: RedisClient | None = None,
        engage: EngageClient | None = None,
        metrics: Metrics | None = None,
        roles: set[Role] | frozenset[Role] | None = None,
        emulator_file: Path | None = None,
        redis_dies_with_us: bool = True,
    ) -> None:
        """`adapters`: None builds the enabled ones (plus the console relay, so this process's
        workers can answer `chat` threads); `also` adds adapters to those; `listen`: names of
        the adapters whose listener runs (None: all); `emulator_file`: where the built-in
        emulator keeps its data (SQLite; None: in memory); `redis_dies_with_us`: an embedded
        server this process starts is killed with it even by SIGKILL (`run`), or outlives it
        while other processes use it (`chat`, which a `run` may have joined)."""
        self.settings = settings
        self._emulator_file = emulator_file
        self._redis_dies_with_us = redis_dies_with_us
        self._emulator_store: SqliteStore | None = None
        self.roles: frozenset[Role] = frozenset(roles if roles is not None else settings.roles)
        self.metrics = metrics or Metrics()
        self.adapters: list[Adapter] = list(adapters) if adapters is not None else []
        self._build_adapters = adapters is None
        self._also = list(also)
        self._listen = frozenset(listen) if listen is not None else None
        self._redis = redis
        self._engage = engage
        self._bridge: Bridge | None = None
        self.embedded: EmbeddedRedis | None = None
        self.redis_url: str | None = None
        self.http_url: str | None = None
        self.emulator_url: str | None = None
        self._http: HttpServer | None = None
        self._tasks = RoleTasks()
        self._started = False
        self._cleanup = contextlib.AsyncExitStack()

    # What the rest of the program and the tests use.
    @property
    def bridge(self) -> Bridge:
        if self._bridge is None:
            raise RuntimeError("the runtime is not started")
        return self._bridge

    @property
    def redis(self) -> RedisClient:
        if self._redis is None:
            raise RuntimeError("the runtime is not started")
        return self._redis

    @property
    def engage(self) -> EngageClient:
        if self._engage is None:
            raise RuntimeError("the runtime is not started")
        return self._engage

    @property
    def failure(self) -> BaseException | None:
        """What the role task that stopped on its own raised, if any."""
        return self._tasks.failure

    async def __aenter__(self) -> BridgeRuntime:
        try:
            await self._start()
        except BaseException:
            await self._stop_everything()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop_everything()

    def stop(self) -> None:
        """Ask `wait()` to return (signal handlers call this)."""
        self._tasks.stop()

    async def wait(self) -> None:
        """Until `stop()` or until a role task ends; raises RoleFailed if one crashed."""
        await self._tasks.wait()

    # Start-up, in dependency order; each step registers its own clean-up.
    async def _start(self) -> None:
        require_strong_secrets(self.settings, *self.settings.platforms())
        await self._start_redis()
        if self._emulator_file is not None and self._engage is None and self.settings.uses_emulator:
            from bridge.emulator.store import SqliteStore

            # Closed after the HTTP server has drained the emulator's last requests.
            self._emulator_store = SqliteStore(self._emulator_file)
            self._cleanup.callback(self._emulator_store.close)
        # Every process serves /healthz, /readyz and /metrics (worker pods are probed too); the
        # `http` role only adds the adapters' routes. Bound before the app exists, so the
        # emulator's URL (even an ephemeral port) is known.
        self._http = HttpServer(
            self.settings.http_host,
            self.settings.http_port,
            max_connections=self.settings.http_max_connections,
            head_timeout=self.settings.http_head_timeout_seconds,
        )
        self.http_url = self._http.url
        self._cleanup.push_async_callback(self._http.stop)  # its socket, if start-up fails early
        emulator_app = self._start_engage()
        if self._build_adapters:
            self.adapters = build_adapters(self.settings, self.redis)
        self.adapters.extend(self._also)
        if self._build_adapters and all(a.name != "console" for a in self.adapters):
            self.adapters.append(load_adapter("console", self.settings, self.redis))
        for adapter in self.adapters:
            if isinstance(adapter, NeedsRedis):
                adapter.attach(self.redis)
        self._bridge = Bridge(
            settings=self.settings,
            redis=self.redis,
            engage=self.engage,
            adapters={adapter.name: adapter for adapter in self.adapters},
            metrics=self.metrics,
        )
        for adapter in self.adapters:
            # Always started: worker-only processes send replies too.
            self._cleanup.push_async_callback(self._close_adapter, adapter)
            try:
                await adapter.start()
            except Exception as exc:
                raise ConfigError(f"the {adapter.name} adapter could not start: {exc}") from exc
        # Stopped first: no new requests, and those in flight (with the accept signs sent after
        # their acks) finish while the adapters and the Engage client are still open.
        self._cleanup.push_async_callback(self._stop_http)
        await self._http.start(self._app(emulator_app))
        assert self._http.task is not None
        self._tasks.watch("http", self._http.task)
        if "workers" in self.roles:
            await self.bridge.validate_agents()
            if self._started_redis:
                await restart.take_over(self.bridge)
        self._start_roles()
        self._started = True

    async def _start_redis(self) -> None:
        if self._redis is None:
            if self.settings.redis_url:
                self.redis_url = self.settings.redis_url
            elif self.settings.redis_cluster:
                raise ConfigError("ENGAGE_BRIDGE_REDIS_CLUSTER needs ENGAGE_BRIDGE_REDIS_URL")
            else:
                self.embedded = EmbeddedRedis(
                    self.settings.data_dir, die_with_parent=self._redis_dies_with_us
                )
                await self.embedded.start()
                self._cleanup.push_async_callback(self.embedded.stop)
                self.redis_url = self.embedded.url
            self._redis = connect_redis(
                self.redis_url,
                cluster=self.settings.redis_cluster,
                limits=redis_limits(self.settings),
            )
            self._cleanup.push_async_callback(self._redis.aclose)
        await ping(self._redis)

    def _retried(self, _: RetryEvent) -> None:
        self.metrics.agent_retries.inc()

    def _start_engage(self) -> Starlette | None:
        """Build the client; with no API key, also the emulator app to mount. Returns that app."""
        if self._engage is not None:
            return None
        if not self.settings.uses_emulator:
            if not self.settings.engage_org_id:
                raise ConfigError("ENGAGE_SMARTER_ORG_ID is required with ENGAGE_SMARTER_API_KEY")
            self._engage = EngageClient.from_settings(self.settings, on_retry=self._retried)
            self._cleanup.push_async_callback(self._engage.aclose)
            return None
        from bridge import emulator  # only needed without an API key

        assert self.http_url is not None
        self.emulator_url = f"{self.http_url}/emulator"
        self._engage = EngageClient.from_settings(
            self.settings,
            base_url=self.emulator_url,
            api_key=emulator.DEFAULT_API_KEY,
            org_id=emulator.DEFAULT_ORG_ID,
            on_retry=self._retried,
        )
        self._cleanup.push_async_callback(self._engage.aclose)
        state = emulator.EmulatorState(store=self._emulator_store)
        if self._emulator_store is not None and self._started_redis:
            restart.drop_dead_runs(state)
        app: Starlette = emulator.create_app(state)
        return app

    @property
    def _started_redis(self) -> bool:
        """This process started the data dir's embedded Redis: no other process uses it."""
        return self.embedded is not None and not self.embedded.reused

    def _app(self, emulator_app: Starlette | None) -> Starlette:
        routes: list[BaseRoute] = []
        if "http" in self.roles:  # webhooks and pages; the emulator is this process's own
            for adapter in self.adapters:
                if isinstance(adapter, HttpAdapter):
                    routes.extend(adapter.routes(self.bridge))
        mounts = {"/emulator": emulator_app} if emulator_app is not None else {}
        return create_app(
            metrics=self.metrics,
            readiness=self.readiness,
            refresh_metrics=self._refresh_metrics,
            routes=routes,
            mounts=mounts,
            admission=self.bridge.admission,
        )

    def _start_roles(self) -> None:
        if "listeners" in self.roles:
            for adapter in self.adapters:
                if self._listen is not None and adapter.name not in self._listen:
                    continue
                task = asyncio.create_task(
                    adapter.run(self.bridge), name=f"listener:{adapter.name}"
                )
                self._tasks.watch(f"listener:{adapter.name}", task)
        if "workers" in self.roles:
            self._tasks.watch(
                "workers", asyncio.create_task(self.bridge.run_workers(), name="workers")
            )

    # Operator surface.
    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            # A write, not a PING: a Redis at maxmemory answers PING and refuses every message.
            await accepts_writes(self.redis)
            checks["redis"] = "ok"
        except StorageUnavailable as exc:
            checks["redis"] = str(exc)
        if not self._started:
            checks["runtime"] = "starting"
        checks.update(self._tasks.checks())
        return checks

    async def _refresh_metrics(self) -> None:
        self.metrics.queue_depth.set(await self.bridge.queue_depth())

    # Shut-down, in reverse order of start-up.
    async def _stop_everything(self) -> None:
        await self._tasks.cancel(keep="http")
        await self._cleanup.aclose()

    async def _stop_http(self) -> None:
        assert self._http is not None
        await self._http.stop()
        await work_after_acks_done(_AFTER_ACK_SECONDS)

    async def _close_adapter(self, adapter: Adapter) -> None:
        try:
            await adapter.aclose()
        except Exception:
            log.warning("closing an adapter failed", exc_info=True, extra={"adapter": adapter.name})
