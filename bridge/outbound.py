"""Posting into threads exactly once: the store's posted ledger maps reply ids to posts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from bridge import backoff
from bridge.adapter import (
    AcceptSignAdapter,
    Adapter,
    LastingSign,
    LedgerAdapter,
    LifecycleAdapter,
    PostClearsStatus,
    StatusAdapter,
)
from bridge.admission import after_ack
from bridge.config import Settings
from bridge.errors import PermanentPlatformError, PlatformError
from bridge.metrics import Metrics
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# A sign later than this is no longer "at once"; the worker's own status takes over.
_SIGN_SECONDS = 5.0
_SIGNED_MEMORY = 10_000

WORKING_STATUS = "Thinking…"
"""Shown from the first moment of every agent call (and by an accept sign), so a thread never
looks dead while the agent works; status messages the agent streams replace it."""


class Outbound:
    """Sends replies through the thread's adapter, checking and recording what was posted."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter],
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._adapters = adapters
        self._metrics = metrics
        # Checked once: an isinstance against a runtime Protocol costs 4-15 µs per call.
        self._signers = {k: a for k, a in adapters.items() if isinstance(a, AcceptSignAdapter)}
        self._statuses = {k: a for k, a in adapters.items() if isinstance(a, StatusAdapter)}
        self._mirrors = {k: a for k, a in adapters.items() if isinstance(a, LifecycleAdapter)}
        # The worker's first "working" status repeats an accept sign of the same process only
        # while the adapter says the sign still shows (LastingSign): skipped then (one platform
        # call less per turn); any other adapter gets it sent.
        self._lasting = {
            k: a.sign_seconds
            for k, a in adapters.items()
            if isinstance(a, LastingSign) and a.sign_seconds > 0
        }
        self._clearing = {k: a for k, a in adapters.items() if isinstance(a, PostClearsStatus)}
        self._ledgered = {k: a for k, a in adapters.items() if isinstance(a, LedgerAdapter)}
        self._signs: dict[ThreadKey, asyncio.Future[None]] = {}
        self._signed_at: dict[ThreadKey, float] = {}

    def adapter(self, thread: ThreadKey) -> Adapter:
        adapter = self._adapters.get(thread.platform)
        if adapter is None:
            raise PermanentPlatformError(f"no adapter for platform {thread.platform!r} here")
        return adapter

    def adapter_or_none(self, thread: ThreadKey) -> Adapter | None:
        return self._adapters.get(thread.platform)

    async def already_posted(self, thread: ThreadKey, key: str) -> bool:
        return await self._store.posted.get(thread, key) is not None

    async def post(self, reply: Reply) -> str:
        """Post `reply` unless its idempotency key was posted already; return the platform id."""
        thread, key = reply.thread, reply.idempotency_key
        adapter = self._ledgered.get(thread.platform)
        if adapter is not None:
            # The adapter checks and records the reply in the round trips of its part records.
            platform_id, posted_now = await self._send(reply, adapter.post_once)
        else:
            existing = None if reply.fresh else await self._store.posted.get(thread, key)
            if existing is not None:
                return existing
            platform_id = await self._send(reply, self.adapter(thread).send)
            await self._store.posted.record(thread, key, platform_id)
            posted_now = True
        if posted_now:
            self._metrics.messages_out.labels(thread.platform, reply.kind.value).inc()
        return platform_id

    async def notice(self, thread: ThreadKey, key: str, body: str) -> None:
        await self.post(Reply(thread=thread, text=body, idempotency_key=key, kind=ReplyKind.NOTICE))

    def sign_accepted(self, thread: ThreadKey) -> None:
        """Show the thread a sign now, without waiting for it (the platform's ack must not):
        right after the ack of the HTTP request being handled, else in a task of its own."""
        adapter = self._signers.get(thread.platform)
        if adapter is None or thread in self._signs:
            return
        shown = asyncio.get_running_loop().create_future()

        async def show() -> None:
            try:
                await self._show_accepted(adapter, thread)
            finally:
                if not shown.done():
                    shown.set_result(None)

        sign = shown if after_ack(show) else asyncio.create_task(show())
        self._signs[thread] = sign
        sign.add_done_callback(lambda _: self._signs.pop(thread, None))

    async def _show_accepted(self, adapter: AcceptSignAdapter, thread: ThreadKey) -> None:
        """Best effort and bounded: the message is stored; a sign that fails changes nothing."""
        try:
            async with asyncio.timeout(_SIGN_SECONDS):
                await adapter.show_accepted(thread)
        except (PlatformError, TimeoutError) as exc:
            log.info("accept sign not shown: %s", exc, extra={"thread_key": str(thread)})
            return
        if thread.platform in self._lasting:
            if len(self._signed_at) > _SIGNED_MEMORY:
                self._signed_at.clear()
            self._signed_at[thread] = time.monotonic()

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        """Best effort: a status line that fails to show must not fail the turn."""
        adapter = self._statuses.get(thread.platform)
        if adapter is None:
            return
        sign = self._signs.get(thread)
        if sign is not None:
            # A sign sent in this process lands first, so it never shows over an answer.
            await asyncio.wait({sign}, timeout=_SIGN_SECONDS)
        signed_at = self._signed_at.pop(thread, None)
        if (
            signed_at is not None
            and status == WORKING_STATUS
            and time.monotonic() - signed_at < self._lasting[thread.platform]
        ):
            return  # the accept sign still shows just this
        try:
            await adapter.set_status(thread, status)
        except PlatformError as exc:
            log.info("status not shown: %s", exc, extra={"thread_key": str(thread)})

    async def post_clears_status(self, thread: ThreadKey) -> bool:
        """Whether the next post into `thread` clears its status by itself (no call needed).

        Waits for this process's accept sign first: it must land before the answer, or it would
        show over it."""
        adapter = self._clearing.get(thread.platform)
        if adapter is None or not adapter.post_clears_status(thread):
            return False
        sign = self._signs.get(thread)
        if sign is not None:
            await asyncio.wait({sign}, timeout=_SIGN_SECONDS)
        self._signed_at.pop(thread, None)
        return True

    async def mirror_status(self, thread: ThreadKey, status: str, cause: str) -> None:
        """Best effort: the bridge's state is already changed; a desk that missed it is logged."""
        adapter = self._mirrors.get(thread.platform)
        if adapter is None:
            return
        try:
            await adapter.mirror_status(thread, status, cause)
        except PlatformError as exc:
            log.warning("status not mirrored: %s", exc, extra={"thread_key": str(thread)})

    async def _send(self, reply: Reply, send: Callable[[Reply], Awaitable[T]]) -> T:
        """One send: the adapter already tried as often as its platform allows (one retry layer
        per remote: it knows what is safe to repeat there); a failure here is final."""
        try:
            return await send(reply)
        except PermanentPlatformError:
            log.error(
                "platform refused the reply for good",
                extra={"thread_key": str(reply.thread), "reply_key": reply.idempotency_key},
            )
            raise


def send_retry(settings: Settings) -> backoff.Retry:
    """What adapters without a retry setting of their own use for their platform calls."""
    return backoff.Retry(
        settings.agent_attempts, settings.agent_backoff_seconds, settings.agent_backoff_max_seconds
    )
