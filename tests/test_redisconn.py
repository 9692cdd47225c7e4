"""Redis connections: pool and timeouts fitted to the workers, URLs printed without passwords."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings
from bridge.redisconn import redacted_url, redis_limits


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "data_dir": tmp_path / "data",
    }
    return Settings(**(values | overrides))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@db:6379/0", "redis://:***@db:6379/0"),
        ("rediss://user:pw@db/0", "rediss://user:***@db/0"),
        ("redis://db:6379/0", "redis://db:6379/0"),
    ],
)
def test_redis_urls_are_printed_without_passwords(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_redis_pool_fits_the_workers_and_reads_outlast_blocking_reads(tmp_path: Path) -> None:
    small = redis_limits(settings(tmp_path, worker_concurrency=4))
    large = redis_limits(settings(tmp_path, worker_concurrency=64))
    assert large.max_connections - small.max_connections == 2 * (64 - 4)
    assert small.max_connections > 2 * 4
    # Thousands of turns in flight share a capped pool: each holds a connection per command only.
    huge = redis_limits(settings(tmp_path, worker_concurrency=5000))
    assert (
        huge.max_connections
        == redis_limits(settings(tmp_path, worker_concurrency=2000)).max_connections
    )
    assert huge.max_connections < 1000
    slow_reads = redis_limits(settings(tmp_path, worker_block_seconds=60))
    assert slow_reads.socket_timeout > 60
