"""Which adapters are switched on, and loading them by name (only then is their SDK imported)."""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from bridge.adapter import Adapter
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.threadmap import RedisClient


@runtime_checkable
class NeedsRedis(Protocol):
    """An adapter built before the runtime's Redis existed (chat's terminal) is handed it."""

    def attach(self, redis: RedisClient) -> None: ...


def enabled_adapter_names(settings: Settings) -> list[str]:
    """The adapters whose settings switch them on, in `bridge.platforms.SETTINGS` order."""
    return [p.platform for p in settings.platforms() if p.is_enabled()]


def load_adapter(name: str, settings: Settings, redis: RedisClient) -> Adapter:
    """Import `adapters.<name>` (only now: its SDK is heavy) and call its `create_adapter`."""
    module_name = f"adapters.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError(f"the {name} adapter is enabled but {module_name} is missing") from exc
    factory = getattr(module, "create_adapter", None)
    if factory is None:
        raise ConfigError(f"{module_name} has no create_adapter(settings, redis)")
    adapter: Adapter = factory(settings, redis)
    return adapter


def build_adapters(settings: Settings, redis: RedisClient) -> list[Adapter]:
    """Every enabled adapter; disabled ones are never imported."""
    return [load_adapter(name, settings, redis) for name in enabled_adapter_names(settings)]
