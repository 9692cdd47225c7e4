"""A refused command: logged, and explained privately to whoever asked; nothing else changes."""

from __future__ import annotations

import logging

from bridge.adapter import Adapter, PrivateNoticeAdapter
from bridge.errors import PlatformError
from bridge.models import InboundMessage
from bridge.permissions import Verdict

log = logging.getLogger(__name__)


async def refuse(
    adapter: Adapter | None, message: InboundMessage, command: str, verdict: Verdict
) -> None:
    """Best effort: a reason that cannot be shown must not fail (or repeat) the turn."""
    log.warning(
        "command %s refused: %s",
        command,
        verdict.reason,
        extra={"thread_key": str(message.thread), "user_id": message.user_id},
    )
    if not isinstance(adapter, PrivateNoticeAdapter):
        return
    try:
        await adapter.tell(message.thread, message.user_id, verdict.reason)
    except PlatformError as exc:
        log.info("refusal not shown: %s", exc, extra={"thread_key": str(message.thread)})
