"""The web pages' own settings (prefix ENGAGE_BRIDGE_WEB_): operator token, hosts, limits."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bridge.platforms import PlatformSettings

MIN_TOKEN_CHARS = 16


class WebSettings(PlatformSettings):
    """Read with the core's `Settings` (`settings.platform(WebSettings)`); tests pass their own."""

    platform: ClassVar[str] = "web"
    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_WEB_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # The local playground and operator view are served unless switched off.
    enabled: bool = True

    # Required to serve the pages on anything but loopback; entered once on /web/login.
    token: SecretStr | None = None
    # Host header values (names, no port) the pages answer besides loopback names and the host of
    # ENGAGE_BRIDGE_PUBLIC_URL; "*" accepts any (only meaningful with a token).
    allowed_hosts: list[str] = Field(default_factory=list)
    # A trusted authenticating proxy: the header naming its signed-in user, and the secret it
    # sends in X-Engage-Bridge-Proxy-Secret (16+ characters); `staff_users` ("*": all) are staff.
    proxy_user_header: str | None = None
    proxy_secret: SecretStr | None = None
    staff_users: list[str] = Field(default_factory=list)
    # With a token or proxy: visitors without either may chat in the playground (own threads).
    public_playground: bool = False
    messages_per_minute: int = Field(20, ge=1)
    threads_per_hour: int = Field(30, ge=1)
    # Web transcripts are a trial surface: kept a week after their last message, not 30 days.
    thread_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)

    def is_enabled(self) -> bool:
        return self.enabled
