"""Which `ENGAGE_BRIDGE_*` variables no setting reads: a mistyped name would otherwise change
nothing, silently (a typo in `ENGAGE_BRIDGE_REDIS_URL` means the embedded Redis)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic_settings import BaseSettings, EnvSettingsSource

PREFIX = "ENGAGE_BRIDGE_"


def env_names(*classes: type[BaseSettings]) -> set[str]:
    """Every variable name (upper case) pydantic-settings reads for these classes' fields: the
    prefixed field name, aliases, and whatever its rules add (asked of it, not re-derived)."""
    names: set[str] = set()
    for cls in classes:
        source = EnvSettingsSource(cls)
        for name, field in cls.model_fields.items():
            names |= {env.upper() for _, env, _ in source._extract_field_info(field, name)}
    return names


def unknown(names: Iterable[str], known: set[str]) -> list[tuple[str, str | None]]:
    """(name, the closest known name or None) for each prefixed name no setting reads, sorted."""
    # Compared without the prefix every candidate shares, or any name is "close" to any other.
    tails = sorted(k.removeprefix(PREFIX) for k in known if k.startswith(PREFIX))
    found = []
    for name in sorted(set(names)):
        upper = name.upper()
        if upper.startswith(PREFIX) and upper not in known:
            close = difflib.get_close_matches(upper.removeprefix(PREFIX), tails, n=1, cutoff=0.8)
            found.append((name, PREFIX + close[0] if close else None))
    return found


def describe(name: str, closest: str | None) -> str:
    """One line about an unknown name; never its value (it may be a secret)."""
    hint = f"did you mean {closest}?" if closest else "see the README's Configuration section"
    return f"{name} is not a setting of engage-bridge and is ignored ({hint})"
