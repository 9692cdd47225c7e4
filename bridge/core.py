"""The Bridge: the core's one entry point for adapters (Inbox), workers, CLI and web views."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bridge.actions import Services
from bridge.adapter import Adapter
from bridge.admission import Admission
from bridge.chat import Sleep
from bridge.config import Settings
from bridge.deadletters import DeadLetters
from bridge.engage.client import EngageClient
from bridge.engage.errors import NotFound
from bridge.engage.models import ConversationReadFull, MessageRead
from bridge.errors import ConfigError
from bridge.inbox import InboxQueue, storage
from bridge.metrics import Metrics
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from bridge.outbound import Outbound
from bridge.store import RedisClient, Store
from bridge.threadmap import ThreadMap, ThreadRecord, rebuild_map
from bridge.turn import TurnRunner
from bridge.worker import Workers

GONE_NOTE = (
    "The conversation is gone upstream (deleted or expired); the thread's next message "
    "starts a new one and says so in the thread."
)


@dataclass(frozen=True, slots=True)
class History:
    """A thread's conversation for the operator paths; `note` says why it is missing."""

    record: ThreadRecord
    conversation: ConversationReadFull | None = None
    messages: list[MessageRead] = field(default_factory=list)
    note: str = ""


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Bridge:
    """Implements `bridge.adapter.Inbox`; `run_workers()` processes threads until cancelled."""

    def __init__(
        self,
        *,
        settings: Settings,
        redis: RedisClient,
        engage: EngageClient,
        adapters: Mapping[str, Adapter],
        metrics: Metrics,
        consumer_name: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.engage = engage
        self.adapters = adapters
        self.metrics = metrics
        self.store = Store(redis, record_ttl_seconds=settings.thread_idle_ttl_seconds)
        self.threads = ThreadMap(self.store)
        policy, staff = settings.file.policy, settings.file.staff
        self.inbox = InboxQueue(self.store, metrics, policy=policy, staff=staff)
        self.dead_letters = DeadLetters(self.store)
        self.outbound = Outbound(self.store, adapters, metrics)
        self.admission = Admission(settings.ack_first_seconds)
        services = Services(settings, self.threads, engage, self.outbound, metrics, sleep)
        runner = TurnRunner(services, self.store, self.dead_letters)
        self.workers = Workers(
            self.store,
            runner,
            metrics,
            consumer_name or default_consumer_name(),
            concurrency=settings.worker_concurrency,
            lease_seconds=settings.lease_seconds,
            claim_idle_seconds=settings.claim_idle_seconds,
            block_seconds=settings.worker_block_seconds,
            admission=self.admission,
        )
        self.inbox.starts = self.workers  # an accept may start its thread's turn here

    async def submit(self, message: InboundMessage) -> SubmitResult:
        with self.admission.ingress():  # Socket Mode and gateway events have no HTTP request
            result, answer = await self.inbox.accept(message)
        if answer:
            self.outbound.sign_accepted(message.thread)
        return result

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return await self.inbox.is_known_thread(thread)

    async def thread_status(self, thread: ThreadKey) -> str | None:
        async with storage("thread_status"):
            return await self.threads.status(thread)

    async def run_workers(self) -> None:
        await self.workers.run()

    async def validate_agents(self) -> None:
        """ConfigError naming every routed agent the platform does not know."""
        unknown = [
            agent
            for agent in sorted(self.settings.file.routing.all_agents())
            if not await self.engage.validate_agent(agent)
        ]
        if unknown:
            raise ConfigError(f"unknown Engage Smarter agent(s): {', '.join(unknown)}")

    async def rebuild_map(self, progress: Callable[[int], None] | None = None) -> int:
        routing = self.settings.file.routing
        return await rebuild_map(
            self.threads, self.engage, lambda t: routing.agent_for(t.workspace, t.channel), progress
        )

    async def history(self, thread: ThreadKey | str) -> History | None:
        """None for an unmapped thread; a gone conversation is a note, not an error (other
        Engage errors propagate)."""
        record = await self.threads.get(thread)
        if record is None:
            return None
        try:
            conversation = await self.engage.get_conversation(record.conversation_id)
            messages = await self.engage.get_messages(record.conversation_id)
        except NotFound:
            return History(record, note=GONE_NOTE)
        return History(record, conversation, messages)

    async def queue_depth(self) -> int:
        return await self.inbox.depth()
