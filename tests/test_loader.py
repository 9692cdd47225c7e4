"""Which adapters are switched on, and loading one by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.desk.settings import DeskSettings
from adapters.web.settings import WebSettings
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.loader import enabled_adapter_names, load_adapter
from bridge.platforms import PlatformSettings


def settings(tmp_path: Path, *platforms: PlatformSettings) -> Settings:
    no_web = WebSettings(_env_file=None, enabled=False)
    return Settings([no_web, *platforms], _env_file=None, data_dir=tmp_path / "data")


def test_only_enabled_adapters_are_listed(tmp_path: Path) -> None:
    assert enabled_adapter_names(settings(tmp_path)) == []
    web = WebSettings(_env_file=None, enabled=True)
    desk = DeskSettings(_env_file=None, signing_secret="s" * 16)
    assert enabled_adapter_names(settings(tmp_path, web, desk)) == ["desk", "web"]


async def test_an_enabled_adapter_whose_module_is_missing_is_a_config_error(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    with pytest.raises(ConfigError, match=r"adapters\.carrier_pigeon is missing"):
        load_adapter("carrier_pigeon", settings(tmp_path), redis_client)
