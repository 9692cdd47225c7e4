"""The platforms the core can switch on, and where each keeps its own settings.

Every adapter package has a light `settings` module (pydantic only: a platform's SDK loads with
its adapter, never with its settings) whose `PlatformSettings` reads that platform's variables.
`Settings` composes them, so the configuration is still read once, where the entry point
builds it, while the core's own fields name no platform.
"""

from __future__ import annotations

import importlib
from abc import abstractmethod
from typing import ClassVar

from pydantic_settings import BaseSettings

# adapter name -> "module:class" of its settings, in the order the adapters are started
SETTINGS = {
    "slack": "adapters.slack.settings:SlackSettings",
    "discord": "adapters.discord.settings:DiscordSettings",
    "desk": "adapters.desk.settings:DeskSettings",
    "zendesk": "adapters.zendesk.settings:ZendeskSettings",
    "chatwoot": "adapters.chatwoot.settings:ChatwootSettings",
    "web": "adapters.web.settings:WebSettings",
}


class PlatformSettings(BaseSettings):
    """One adapter's settings; `is_enabled()` says whether they switch the adapter on."""

    platform: ClassVar[str]

    @abstractmethod
    def is_enabled(self) -> bool: ...


def settings_class(name: str) -> type[PlatformSettings]:
    """Import adapter `name`'s settings class (only its light settings module)."""
    module, _, attribute = SETTINGS[name].partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not (isinstance(found, type) and issubclass(found, PlatformSettings)):
        raise TypeError(f"{SETTINGS[name]} is not a PlatformSettings")
    return found
