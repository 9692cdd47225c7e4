"""The adapter contract: what the core needs from a platform, and what it offers back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from starlette.routing import BaseRoute

from bridge.models import InboundMessage, Reply, SubmitResult, ThreadKey


class Inbox(Protocol):
    """The core's hand-off, given to an adapter's `run`.

    `submit` returns only once the message is durably stored in Redis (or was a duplicate, or
    was ignored by the participation policy): that is when the platform may be acknowledged.
    It raises `bridge.errors.StorageUnavailable` when it could not store the message.
    """

    async def submit(self, message: InboundMessage) -> SubmitResult: ...

    async def is_known_thread(self, thread: ThreadKey) -> bool: ...


@runtime_checkable
class StatusInbox(Protocol):
    """What the core's inbox also tells adapters: a thread's hand-off status (None: unknown)."""

    async def thread_status(self, thread: ThreadKey) -> str | None: ...


@runtime_checkable
class Adapter(Protocol):
    """A platform connection.

    `start` prepares sending (authenticate, learn the bot's own id); `run` listens until
    cancelled; `send` posts into a thread and works in any process after `start`, so worker-only
    processes can answer without listening; `aclose` releases connections.
    """

    name: str

    async def start(self) -> None: ...

    async def run(self, inbox: Inbox) -> None: ...

    async def send(self, reply: Reply) -> str:
        """Post `reply` into its thread; return the platform message id of the (last) part."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LedgerAdapter(Protocol):
    """Optional: post a reply exactly once keeping the core's posted ledger itself, in the round
    trips of its own per-part records (bridge.store.parts), instead of a check before and a
    record after `send`. Returns the platform id of the (last) part, the recorded one for a reply
    posted before, and whether anything was posted now."""

    async def post_once(self, reply: Reply) -> tuple[str, bool]: ...


@runtime_checkable
class StatusAdapter(Protocol):
    """Optional: show that the agent is working (typing, status line); `None` clears it."""

    async def set_status(self, thread: ThreadKey, status: str | None) -> None: ...


@runtime_checkable
class PostClearsStatus(Protocol):
    """Optional, with StatusAdapter: whether posting into `thread` removes its status by itself
    (Slack clears an assistant thread's status when the app replies), so an answer needs no
    clearing call before it. A turn that ends without posting still clears it."""

    def post_clears_status(self, thread: ThreadKey) -> bool: ...


@runtime_checkable
class AcceptSignAdapter(Protocol):
    """Optional: show at once that a message was taken for an answer (a status line, typing),
    from whichever process accepted it. Stateless: the worker's status or the answer replaces
    it, so nothing in this process has to clear it."""

    async def show_accepted(self, thread: ThreadKey) -> None: ...


@runtime_checkable
class LastingSign(Protocol):
    """Optional, with AcceptSignAdapter: how long its sign stays shown by itself, so a worker of
    the same process that starts the turn within that time does not show the same status again
    (Slack's status stays until the app posts, at most 2 minutes). 0 means the worker's status
    is always sent: Discord's typing lasts ~10 s, so the worker's status starts the loop that
    keeps it shown."""

    sign_seconds: float


@runtime_checkable
class PrivateNoticeAdapter(Protocol):
    """Optional: tell one person something only they see (a refused command's reason): Slack
    posts it ephemerally, Discord as a DM, the web playground in the visitor's own transcript."""

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None: ...


@runtime_checkable
class HttpAdapter(Protocol):
    """Optional: routes mounted on the bridge's HTTP server (webhooks, playground pages)."""

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]: ...


@runtime_checkable
class LifecycleAdapter(Protocol):
    """Optional: mirror a thread's hand-off status (`bot`/`human`/`resolved`) into the platform,
    e.g. a desk's conversation status. `cause` is the id of the message that changed it."""

    async def mirror_status(self, thread: ThreadKey, status: str, cause: str) -> None: ...
