"""Secrets checked before anything starts: an empty or too short one is a configuration error."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic_settings import BaseSettings

from bridge.errors import ConfigError

# A secret that *verifies* requests (an HMAC key) is the whole defence of a public route: 16
# characters is the usual floor (Slack's signing secrets are 32). Tokens are checked by the
# platform that issued them; a few characters only ever mean a placeholder or a cut paste.
MIN_SIGNING_SECRET = 16
MIN_TOKEN = 8


def env_name(settings: BaseModel, field: str) -> str:
    """The environment variable an operator sets for `field` (its first alias, or prefix+NAME)."""
    info = type(settings).model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    prefix = (
        settings.model_config.get("env_prefix", "") if isinstance(settings, BaseSettings) else ""
    )
    return f"{prefix}{field}".upper()


def secret_problems(*models: BaseModel) -> list[str]:
    """One sentence per configured secret that is empty or shorter than its floor (pure)."""
    return [problem for settings in models for problem in _problems(settings)]


def _problems(settings: BaseModel) -> list[str]:
    problems = []
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if not isinstance(value, SecretStr):
            continue
        raw = value.get_secret_value().strip()
        floor = MIN_SIGNING_SECRET if "secret" in field else MIN_TOKEN
        name = env_name(settings, field)
        if not raw:
            problems.append(f"{name} is set but empty (unset it, or give the real value)")
        elif len(raw) < floor:
            problems.append(f"{name} is {len(raw)} characters; at least {floor} are required")
    return problems


def require_strong_secrets(*models: BaseModel) -> None:
    """Raise `ConfigError` naming every empty or too short secret."""
    problems = secret_problems(*models)
    if problems:
        raise ConfigError("; ".join(problems))
