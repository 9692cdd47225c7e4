"""Which adapters are switched on, and loading one by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.loader import enabled_adapter_names, load_adapter


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "data_dir": tmp_path / "data",
        "web_enabled": False,
    }
    return Settings(**(values | overrides))


def test_only_enabled_adapters_are_listed(tmp_path: Path) -> None:
    assert enabled_adapter_names(settings(tmp_path)) == []
    enabled = settings(tmp_path, web_enabled=True, desk_signing_secret="s" * 16)
    assert enabled_adapter_names(enabled) == ["desk", "web"]


async def test_an_enabled_adapter_whose_module_is_missing_is_a_config_error(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    with pytest.raises(ConfigError, match=r"adapters\.carrier_pigeon is missing"):
        load_adapter("carrier_pigeon", settings(tmp_path), redis_client)
