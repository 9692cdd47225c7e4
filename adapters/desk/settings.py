"""The generic support desk's settings (`ENGAGE_BRIDGE_DESK_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from bridge.platforms import PlatformSettings


class DeskSettings(PlatformSettings):
    """Enabled when the webhook's signing secret is set; replies go to the callback URL."""

    platform: ClassVar[str] = "desk"
    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_DESK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    signing_secret: SecretStr | None = None
    callback_url: str | None = None
    callback_secret: SecretStr | None = None

    def is_enabled(self) -> bool:
        return self.signing_secret is not None
