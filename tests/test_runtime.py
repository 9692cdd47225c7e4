"""The runtime: builds what is not injected, runs roles, reports readiness, closes what it built."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.console import ConsoleAdapter
from adapters.web.settings import WebSettings
from bridge.adapter import Inbox
from bridge.config import Role, Settings
from bridge.embedded import answers_ping
from bridge.engage.client import EngageClient
from bridge.errors import ConfigError, PlatformError, StorageUnavailable
from bridge.models import Reply, ThreadKey
from bridge.roles import RoleFailed
from bridge.runtime import BridgeRuntime
from tests.fixtures_core import message, thread_key
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "http_port": 0,
        "data_dir": tmp_path / "data",
        "platforms": [WebSettings(_env_file=None, enabled=False)],
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def unused_engage() -> AsyncIterator[EngageClient]:
    # Nothing in these tests reaches Engage Smarter (no workers role).
    client = EngageClient(base_url="http://127.0.0.1:9", api_key="k", org_id="o")
    yield client
    await client.aclose()


class RecordingAdapter:
    """An adapter whose listener waits (or fails on demand) and which serves one route."""

    name = "recording"

    def __init__(self, *, fail_after_start: bool = False) -> None:
        self.fail_after_start = fail_after_start
        self.started = False
        self.closed = False
        self.inbox: Inbox | None = None
        self.running = asyncio.Event()
        self.crash = asyncio.Event()

    async def start(self) -> None:
        self.started = True

    async def run(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.running.set()
        await self.crash.wait()
        raise RuntimeError("gateway closed")

    async def send(self, reply: Reply) -> str:
        return "sent"

    async def aclose(self) -> None:
        self.closed = True

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        async def hook(request: Request) -> Response:
            known = await inbox.is_known_thread(ThreadKey("recording", "w", "c", "t"))
            return PlainTextResponse(f"known={known}")

        return [Route("/recording/hook", hook)]


async def test_health_readiness_metrics_and_adapter_routes_on_one_port(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: aioredis.Redis,  # flushed: an earlier test's entries would count in the depth
    unused_engage: EngageClient,
) -> None:
    adapter = RecordingAdapter()
    roles: set[Role] = {"http", "listeners"}
    async with BridgeRuntime(
        settings(tmp_path, redis_url=redis_server.url),
        adapters=[adapter],
        engage=unused_engage,
        roles=roles,
    ) as rt:
        await asyncio.wait_for(adapter.running.wait(), 5)
        assert rt.http_url is not None
        async with httpx.AsyncClient(base_url=rt.http_url) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
            hook = await client.get("/recording/hook")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"redis": "ok", "http": "ok", "listener:recording": "ok"}
        assert "bridge_queue_depth 0.0" in metrics.text
        assert hook.text == "known=False"
        assert adapter.inbox is rt.bridge
        assert adapter.started
        assert rt.emulator_url is None
    assert adapter.closed


async def test_a_crashed_listener_fails_readiness_and_ends_wait(
    tmp_path: Path, redis_server: RedisServer, unused_engage: EngageClient
) -> None:
    adapter = RecordingAdapter()
    roles: set[Role] = {"http", "listeners"}
    async with BridgeRuntime(
        settings(tmp_path, redis_url=redis_server.url),
        adapters=[adapter],
        engage=unused_engage,
        roles=roles,
    ) as rt:
        await asyncio.wait_for(adapter.running.wait(), 5)
        adapter.crash.set()
        with pytest.raises(RoleFailed, match="gateway closed"):
            await asyncio.wait_for(rt.wait(), 5)
        assert rt.http_url is not None
        async with httpx.AsyncClient(base_url=rt.http_url) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["listener:recording"] == "stopped"


async def test_adapters_are_started_even_without_the_listeners_role(
    tmp_path: Path, redis_server: RedisServer, unused_engage: EngageClient
) -> None:
    adapter = RecordingAdapter()
    async with BridgeRuntime(
        settings(tmp_path, redis_url=redis_server.url),
        adapters=[adapter],
        engage=unused_engage,
        roles=frozenset(),
    ):
        assert adapter.started
        assert adapter.inbox is None
    assert adapter.closed


async def test_a_workers_only_process_serves_probes_and_metrics_but_no_adapter_routes(
    tmp_path: Path, redis_server: RedisServer, emulator: Any, engage_client: EngageClient
) -> None:
    adapter = RecordingAdapter()
    roles: set[Role] = {"workers"}
    async with BridgeRuntime(
        settings(tmp_path, redis_url=redis_server.url),
        adapters=[adapter],
        engage=engage_client,
        roles=roles,
    ) as rt:
        assert rt.http_url is not None
        async with httpx.AsyncClient(base_url=rt.http_url) as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
            hook = await client.get("/recording/hook")
        assert health.status_code == 200
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"redis": "ok", "http": "ok", "workers": "ok"}
        assert "bridge_queue_depth" in metrics.text
        assert hook.status_code == 404


async def test_stop_ends_wait_cleanly(
    tmp_path: Path, redis_server: RedisServer, unused_engage: EngageClient
) -> None:
    async with BridgeRuntime(
        settings(tmp_path, redis_url=redis_server.url),
        adapters=[],
        engage=unused_engage,
        roles={"http"},
    ) as rt:
        asyncio.get_running_loop().call_soon(rt.stop)
        await asyncio.wait_for(rt.wait(), 5)
        assert rt.failure is None


async def test_without_a_redis_url_an_embedded_server_runs_in_the_data_dir(
    tmp_path: Path, unused_engage: EngageClient
) -> None:
    async with BridgeRuntime(
        settings(tmp_path), adapters=[], engage=unused_engage, roles=frozenset()
    ) as rt:
        assert rt.embedded is not None
        assert rt.redis_url == rt.embedded.url
        assert rt.embedded.socket_path.parent == (tmp_path / "data").resolve()
        await rt.redis.set("k", "v")
        socket_path = rt.embedded.socket_path
    assert not await answers_ping(socket_path)


async def test_injected_redis_is_used_and_left_open(
    tmp_path: Path, redis_client: aioredis.Redis, unused_engage: EngageClient
) -> None:
    await redis_client.set("marker", "1")
    async with BridgeRuntime(
        settings(tmp_path), adapters=[], engage=unused_engage, redis=redis_client, roles=frozenset()
    ) as rt:
        assert rt.redis is redis_client
        assert rt.embedded is None
    assert await redis_client.get("marker") == b"1"


async def test_unreachable_redis_is_reported_and_nothing_is_left_running(
    tmp_path: Path, unused_engage: EngageClient
) -> None:
    adapter = RecordingAdapter()
    with pytest.raises(StorageUnavailable, match="Redis did not answer"):
        async with BridgeRuntime(
            settings(tmp_path, redis_url="redis://127.0.0.1:9/0"),
            adapters=[adapter],
            engage=unused_engage,
        ):
            pass
    assert not adapter.started


async def test_api_key_without_org_id_is_a_config_error(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with pytest.raises(ConfigError, match="ENGAGE_SMARTER_ORG_ID"):
        async with BridgeRuntime(
            settings(tmp_path, redis_url=redis_server.url, engage_api_key="secret-key"),
            adapters=[],
            roles=frozenset(),
        ):
            pass


async def test_cluster_mode_without_a_redis_url_is_a_config_error(
    tmp_path: Path, unused_engage: EngageClient
) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        async with BridgeRuntime(
            settings(tmp_path, redis_cluster=True), adapters=[], engage=unused_engage
        ):
            pass


async def test_cluster_mode_runs_a_console_turn_on_a_real_cluster(
    tmp_path: Path, redis_cluster: RedisCluster, redis_cluster_client: aioredis.RedisCluster
) -> None:
    out = io.StringIO()

    async def lines() -> AsyncIterator[str]:
        yield "Hi, my name is Lin\n"

    console = ConsoleAdapter(lines=lines(), out=out, session_id="cluster")
    roles: set[Role] = {"listeners", "workers"}
    cluster_settings = settings(tmp_path, redis_url=redis_cluster.url, redis_cluster=True)
    async with BridgeRuntime(cluster_settings, adapters=[console], roles=roles) as rt:
        assert isinstance(rt.redis, aioredis.RedisCluster)
        await asyncio.wait_for(rt.wait(), 20)
    assert "Nice to meet you, Lin" in out.getvalue()


async def test_an_adapter_that_cannot_start_stops_start_up_naming_it(
    tmp_path: Path, redis_server: RedisServer, unused_engage: EngageClient
) -> None:
    class BadToken(RecordingAdapter):
        name = "badtoken"

        async def start(self) -> None:
            raise PlatformError("invalid_auth")

    adapter = BadToken()
    with pytest.raises(ConfigError, match="the badtoken adapter could not start: invalid_auth"):
        async with BridgeRuntime(
            settings(tmp_path, redis_url=redis_server.url),
            adapters=[adapter],
            engage=unused_engage,
            roles={"http", "listeners"},
        ):
            pass
    assert adapter.closed


async def test_a_submit_burst_larger_than_the_redis_pool_waits_for_connections(
    tmp_path: Path, redis_server: RedisServer, redis_client: aioredis.Redis, unused_engage: Any
) -> None:
    config = settings(tmp_path, redis_url=redis_server.url, worker_concurrency=1)
    async with BridgeRuntime(config, adapters=[], engage=unused_engage, roles=frozenset()) as rt:
        pool = rt.redis.connection_pool  # type: ignore[union-attr]
        assert isinstance(pool, aioredis.BlockingConnectionPool)
        assert pool.max_connections < 300
        burst = [
            message(thread_key(f"burst{n}", platform="recording"), f"question {n}")
            for n in range(300)
        ]
        results = await asyncio.gather(*(rt.bridge.submit(m) for m in burst))
    assert [r.extra["outcome"] for r in results] == ["accepted"] * 300
