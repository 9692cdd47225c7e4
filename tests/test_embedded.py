"""The embedded redis-server: starts, persists across restarts, is reused, survives stale files."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bridge.embedded import EmbeddedRedis, answers_ping, socket_path_for
from bridge.errors import StorageUnavailable


async def _get(url: str, key: str) -> bytes | None:
    client = aioredis.Redis.from_url(url)
    try:
        value: bytes | None = await client.get(key)
        return value
    finally:
        await client.aclose()


async def _set(url: str, key: str, value: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.set(key, value)
    finally:
        await client.aclose()


async def test_starts_a_server_on_a_unix_socket_in_the_data_dir(tmp_path: Path) -> None:
    async with EmbeddedRedis(tmp_path / "data") as embedded:
        assert embedded.url.startswith("unix://")
        assert not embedded.reused
        await _set(embedded.url, "k", "v")
        assert await _get(embedded.url, "k") == b"v"
    assert not await answers_ping(embedded.socket_path)
    assert (tmp_path / "data" / "appendonly.aof").exists()


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    async with EmbeddedRedis(tmp_path) as embedded:
        await _set(embedded.url, "thread", "conversation-1")
    async with EmbeddedRedis(tmp_path) as embedded:
        assert await _get(embedded.url, "thread") == b"conversation-1"


async def test_second_instance_reuses_the_running_server_and_leaves_it_running(
    tmp_path: Path,
) -> None:
    async with EmbeddedRedis(tmp_path) as first:
        async with EmbeddedRedis(tmp_path) as second:
            assert second.reused
            assert second.pid is None
            assert second.url == first.url
        assert await answers_ping(first.socket_path)


async def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    socket_path = socket_path_for(tmp_path)
    socket_path.write_text("left behind by a killed process")
    async with EmbeddedRedis(tmp_path) as embedded:
        assert not embedded.reused
        assert await answers_ping(socket_path)


async def test_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(deep / "redis.sock")) > 108
    async with EmbeddedRedis(deep) as embedded:
        assert len(str(embedded.socket_path)) < 100
        assert socket_path_for(deep) == embedded.socket_path
        assert await answers_ping(embedded.socket_path)


async def test_server_that_exits_at_once_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="exited"):
        await EmbeddedRedis(tmp_path, executable="/bin/false").start()


async def test_unwritable_data_dir_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageUnavailable, match="cannot create data dir"):
        await EmbeddedRedis(blocker / "data").start()
