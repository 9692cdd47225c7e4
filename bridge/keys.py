"""Moved: every key now lives in `bridge/store/keys.py` (this name stays for older imports)."""

from bridge.store.keys import *  # noqa: F403
