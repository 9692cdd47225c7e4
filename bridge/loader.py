"""Which adapters are switched on, and loading them by name (only then is their SDK imported)."""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from bridge.adapter import Adapter
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.threadmap import RedisClient

# adapter module -> the Settings property that switches it on, or (for adapters that keep their
# settings in their own package) the light module whose `enabled()` reads them
ADAPTER_SWITCHES = {
    "slack": "slack_enabled",
    "discord": "discord_enabled",
    "desk": "desk_enabled",
    "zendesk": "adapters.zendesk.settings",
    "chatwoot": "adapters.chatwoot.settings",
    "web": "web_enabled",
}


@runtime_checkable
class NeedsRedis(Protocol):
    """An adapter built before the runtime's Redis existed (chat's terminal) is handed it."""

    def attach(self, redis: RedisClient) -> None: ...


def enabled_adapter_names(settings: Settings) -> list[str]:
    return [name for name, switch in ADAPTER_SWITCHES.items() if _switched_on(settings, switch)]


def _switched_on(settings: Settings, switch: str) -> bool:
    if switch.startswith("adapters."):
        return bool(importlib.import_module(switch).enabled())
    return bool(getattr(settings, switch))


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
