"""The root of engage-bridge's error tree.

    BridgeError
    ├── ConfigError            configuration is invalid or incomplete (start-up stops)
    ├── StorageUnavailable     Redis could not be reached: nothing was stored, the caller retries
    ├── PlatformError          a chat platform refused or failed a call
    │   └── PermanentPlatformError   retrying cannot help (locked thread, missing permission)
    └── EngageError            the Engage Smarter API (tree in bridge/engage/errors.py)

Foreign exceptions (redis, httpx, slack_sdk, discord) are translated once, at the boundary
where they are caught, with `raise ... from`.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error engage-bridge raises on purpose."""


class ConfigError(BridgeError):
    """Configuration is invalid or incomplete."""


class StorageUnavailable(BridgeError):
    """Redis could not be reached or refused a write; the operation did not happen."""


class PlatformError(BridgeError):
    """A chat platform call failed; it may succeed if retried."""


class PermanentPlatformError(PlatformError):
    """A chat platform call failed in a way that retrying cannot fix."""
