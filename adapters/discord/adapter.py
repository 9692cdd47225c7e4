"""The Discord adapter: gateway listener, thread-aware sender, typing indicator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord

from adapters.discord import access, commands
from adapters.discord.agents import AgentNames, HasEngage, choices
from adapters.discord.catchup import CatchUp, GapRecovery
from adapters.discord.client import (
    BAD_TOKEN_HELP,
    MISSING_INTENT_HELP,
    build_client,
    capture_message_payloads,
    capture_session_starts,
    channel_facts,
)
from adapters.discord.events import DM_WORKSPACE, BotFacts, ChannelFacts, ChannelKind, to_event
from adapters.discord.format import nonce_for, split_message, thread_name
from adapters.discord.settings import DiscordSettings
from adapters.discord.status import StatusLine
from bridge.adapter import Inbox
from bridge.chat import WORKING_STATUS
from bridge.config import Settings
from bridge.errors import ConfigError, PermanentPlatformError, PlatformError, StorageUnavailable
from bridge.models import InboundMessage, Reply, ThreadKey
from bridge.parts import bounded
from bridge.threadmap import RedisClient, ThreadMap

log = logging.getLogger(__name__)

# Discord error codes meaning "that thread already exists, or this is not a thread starter":
# 160004 thread already created for this message, 50024 wrong channel type (forum, thread),
# 10008 unknown message (the key names a thread that was not started from a message here).
_THREAD_EXISTS = frozenset({160004, 50024, 10008})
# Retrying cannot help: missing access/permissions, unknown channel, locked or archived thread.
_PERMANENT = frozenset({50001, 50013, 10003, 160005, 50083})
_SUBMIT_DELAYS = (0.2, 0.5, 1, 2, 5, 10, 15, 30)
_GATEWAY_READY_SECONDS = 60.0
# Threads this process has seen exist: saves a thread-start call per reply; forgetting one only
# costs a 160004 answer, so a bounded memory is enough.
_KNOWN_THREADS_MAX = 10_000

Pending = tuple[Mapping[str, Any], ChannelFacts | None] | CatchUp


class DiscordAdapter:
    """`start` logs in over REST (enough to send); listener processes also open the gateway."""

    name = "discord"

    def __init__(
        self,
        settings: Settings,
        redis: RedisClient | None = None,
        options: DiscordSettings | None = None,
        **client_options: Any,
    ) -> None:
        # Without `redis` (adapter-only tests) there is no gap recovery after a re-IDENTIFY.
        if settings.discord_bot_token is None:
            raise ConfigError("the Discord adapter needs DISCORD_BOT_TOKEN")
        self._settings = settings
        self._options = options or DiscordSettings()
        self._token = settings.discord_bot_token.get_secret_value()
        self._client = build_client(settings, **client_options)
        self._pending: asyncio.Queue[Pending] = asyncio.Queue()
        self._recovery = None if redis is None else GapRecovery(redis, self._client.http)
        ttl = settings.thread_idle_ttl_seconds
        self._threads = None if redis is None else ThreadMap(redis, idle_ttl_seconds=ttl)
        self._connected = asyncio.Event()
        self._gateway: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._bot: BotFacts | None = None
        self._known_threads: OrderedDict[str, None] = OrderedDict()
        self._status: dict[ThreadKey, StatusLine] = {}
        self._agents = AgentNames(settings.file.routing.all_agents())
        self._tree = commands.install(self._client, self)
        self._client.event(self.on_connect)
        self._client.event(self.on_resumed)
        capture_message_payloads(self._client, self._enqueue)
        if self._recovery is not None:
            capture_session_starts(self._client, self._pending.put_nowait)

    @property
    def client(self) -> discord.Client:
        return self._client

    @property
    def bot(self) -> BotFacts:
        if self._bot is None:
            raise RuntimeError("DiscordAdapter.start() has not run")
        return self._bot

    @property
    def inbox(self) -> Inbox | None:
        return self._inbox

    async def agent_choices(self, typed: str) -> list[tuple[str, str]]:
        """(label, agent name) for the `/agent` autocomplete."""
        source = self._inbox.engage if isinstance(self._inbox, HasEngage) else None
        return choices(await self._agents.known(source), typed)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._login()
            if "listeners" in self._settings.roles:
                await self._open_gateway()
        except BaseException:
            # The runtime only closes adapters that started; release the HTTP session here.
            await self.aclose()
            raise

    async def _login(self) -> None:
        try:
            await self._client.login(self._token)
        except discord.LoginFailure as exc:
            log.error("discord: %s", BAD_TOKEN_HELP)
            raise ConfigError(BAD_TOKEN_HELP) from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise PlatformError(f"cannot reach Discord to log in: {exc}") from exc
        user = self._client.user
        assert user is not None  # login() sets it
        file = self._settings.file
        self._bot = BotFacts(
            user_id=str(user.id),
            staff_role_ids=frozenset(file.staff.discord_role_ids),
            auto_reply_channels=frozenset(file.policy.auto_reply_channels),
            allow_bots=file.policy.allow_bots,
        )
        log.info("discord: logged in as bot %s", user.id)

    async def _open_gateway(self) -> None:
        """Connect now so a missing intent fails start-up instead of a background task."""
        self._gateway = asyncio.create_task(self._client.connect(reconnect=True))
        connected = asyncio.create_task(self._connected.wait())
        await asyncio.wait(
            {self._gateway, connected},
            timeout=_GATEWAY_READY_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
        connected.cancel()
        if self._gateway.done():
            await self._gateway_outcome()
        elif not self._connected.is_set():
            log.warning(
                "discord: gateway not ready after %ss; still trying", _GATEWAY_READY_SECONDS
            )
        await commands.sync(self._tree, self._settings.discord_guild_ids)

    async def _gateway_outcome(self) -> None:
        assert self._gateway is not None
        try:
            await self._gateway
        except discord.PrivilegedIntentsRequired as exc:
            log.error("discord: %s", MISSING_INTENT_HELP)
            raise ConfigError(MISSING_INTENT_HELP) from exc
        except discord.ConnectionClosed as exc:
            raise PlatformError(f"Discord closed the gateway (code {exc.code})") from exc

    async def on_connect(self) -> None:
        self._connected.set()

    async def on_resumed(self) -> None:
        log.info("discord: gateway session resumed")

    async def run(self, inbox: Inbox) -> None:
        self._inbox = inbox
        if self._gateway is None:
            await self._open_gateway()
        assert self._gateway is not None
        consumer = asyncio.create_task(self._consume(inbox))
        try:
            await self._gateway_outcome()
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    async def aclose(self) -> None:
        for line in self._status.values():
            line.cancel()
        self._status.clear()
        await self._client.close()
        if self._gateway is not None:
            self._gateway.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._gateway

    # ---- inbound ---------------------------------------------------------------------------

    def _enqueue(self, payload: Mapping[str, Any], facts: ChannelFacts | None) -> None:
        self._pending.put_nowait((payload, facts))

    async def _consume(self, inbox: Inbox) -> None:
        while True:
            item = await self._pending.get()
            if isinstance(item, CatchUp):
                await self._catch_up(inbox, item)
            elif await self._handle(inbox, *item) and self._recovery is not None:
                await self._recovery.handled(item[0])

    async def _handle(
        self, inbox: Inbox, payload: Mapping[str, Any], facts: ChannelFacts | None
    ) -> bool:
        try:
            message = await self._normalize(payload, facts)
            if message is not None:
                await self.submit(inbox, message)
        except Exception:
            log.exception("discord: could not handle message %s", payload.get("id"))
            return False
        return True

    async def _catch_up(self, inbox: Inbox, request: CatchUp) -> None:
        """Submit what was posted while no session of ours covered `request.scope`, before the
        live events queued behind it (so a thread's order holds)."""
        assert self._recovery is not None
        newest: Mapping[str, Any] | None = None
        async for payload, facts in self._recovery.missed(request):
            if await self._handle(inbox, payload, facts):
                # A guild's position moves only once every channel is read (below); a DM
                # channel's is its own.
                if payload.get("guild_id") is None:
                    await self._recovery.handled(payload)
                elif newest is None or int(payload["id"]) > int(newest["id"]):
                    newest = payload
        if newest is not None:
            await self._recovery.handled(newest)

    async def _normalize(
        self, payload: Mapping[str, Any], facts: ChannelFacts | None
    ) -> InboundMessage | None:
        if facts is None and payload.get("guild_id") is not None:
            try:
                fetched = await self._client.fetch_channel(int(payload["channel_id"]))
            except discord.HTTPException as exc:
                log.warning("discord: channel %s not visible: %s", payload["channel_id"], exc)
                return None
            facts = channel_facts(fetched)
        facts = facts or ChannelFacts(kind=_dm_or_other(payload))
        return to_event(payload, self._with_bot_role(facts, payload.get("guild_id")), self.bot)

    def _with_bot_role(self, facts: ChannelFacts, guild_id: object) -> ChannelFacts:
        guild = None if guild_id is None else self._client.get_guild(int(str(guild_id)))
        if guild is None or guild.self_role is None:
            return facts
        return dataclasses.replace(facts, bot_role_id=str(guild.self_role.id))

    async def submit(self, inbox: Inbox, message: InboundMessage) -> None:
        """Hand `message` to the core; the gateway has no ack, so Redis outages are waited out."""
        for delay in (*_SUBMIT_DELAYS, None):
            try:
                result = await inbox.submit(message)
            except StorageUnavailable:
                if delay is None:
                    log.error(
                        "discord: Redis unavailable; message %s in %s is LOST (Discord cannot "
                        "redeliver gateway events)",
                        message.message_id,
                        message.thread,
                    )
                    raise
                log.warning("discord: Redis unavailable, retrying message %s in %ss",
                            message.message_id, delay)  # fmt: skip
                await asyncio.sleep(delay)
            else:
                log.debug("discord: message %s %s", message.message_id, result.reason)
                return

    # ---- outbound --------------------------------------------------------------------------

    async def send(self, reply: Reply) -> str:
        target = await self._target(reply.thread)
        last_id = ""
        parts = bounded(split_message(reply.text), self._settings.max_reply_parts)
        for index, part in enumerate(parts):
            try:
                sent = await target.send(
                    part,
                    nonce=nonce_for(reply.idempotency_key, index),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as exc:
                raise _translate(exc, reply.thread, "post") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise PlatformError(f"cannot reach Discord: {exc}") from exc
            last_id = str(sent.id)
        return last_id

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None:
        await access.tell(self._client, user_id, text)

    async def refusal(self, message: InboundMessage, command: str) -> str:
        """Why the sender of a slash command may not run it ("" if they may)."""
        return await access.refusal(self._threads, message, command, self._settings.file.staff)

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        line = self._status.get(thread)
        if status is None:
            if line is not None:
                del self._status[thread]
                await line.clear()
            return
        if line is None or not line.typing:
            if line is not None:
                line.cancel()
            target = await self._target(thread)
            line = StatusLine(target, edit_seconds=self._options.status_edit_seconds)
            self._status[thread] = line
        # The core's generic "working" text is what typing already says; the agent's own
        # status texts are worth a message.
        if self._options.status_messages and status != WORKING_STATUS:
            line.show(status)

    def typing_threads(self) -> set[ThreadKey]:
        return {key for key, line in self._status.items() if line.typing}

    async def _target(self, thread: ThreadKey) -> discord.PartialMessageable:
        """Where replies for `thread` go, starting the thread from its message if needed."""
        if thread.workspace != DM_WORKSPACE and thread.thread not in self._known_threads:
            if not isinstance(self._client.get_channel(int(thread.thread)), discord.Thread):
                await self._start_thread(thread)
            self._remember_thread(thread.thread)
        guild_id = None if thread.workspace == DM_WORKSPACE else int(thread.workspace)
        return self._client.get_partial_messageable(int(thread.thread), guild_id=guild_id)

    def _remember_thread(self, thread_id: str) -> None:
        self._known_threads[thread_id] = None
        if len(self._known_threads) > _KNOWN_THREADS_MAX:
            self._known_threads.popitem(last=False)

    async def _start_thread(self, thread: ThreadKey) -> None:
        http = self._client.http
        channel_id, message_id = int(thread.channel), int(thread.thread)
        try:
            starter = await http.get_message(channel_id, message_id)
            name = thread_name(str(starter.get("content") or ""))
        except discord.HTTPException:
            name = thread_name("")
        try:
            await http.start_thread_with_message(
                channel_id, message_id, name=name, auto_archive_duration=1440
            )
            log.info("discord: started thread %s", thread)
        except discord.HTTPException as exc:
            if exc.code not in _THREAD_EXISTS:
                raise _translate(exc, thread, "start a thread") from exc


def _dm_or_other(payload: Mapping[str, Any]) -> ChannelKind:
    return ChannelKind.DM if payload.get("guild_id") is None else ChannelKind.OTHER


def _translate(exc: discord.HTTPException, thread: ThreadKey, action: str) -> PlatformError:
    if exc.code == 160005:
        log.error("discord: thread %s is locked; cannot %s there (unlock it to continue)",
                  thread, action)  # fmt: skip
        return PermanentPlatformError(f"Discord thread {thread} is locked")
    if exc.code in _PERMANENT or exc.status in (401, 403, 404):
        log.error("discord: cannot %s in %s: %s (check the bot's permissions there)",
                  action, thread, exc.text)  # fmt: skip
        return PermanentPlatformError(f"Discord refused to {action} in {thread}: {exc.text}")
    return PlatformError(f"Discord failed to {action} in {thread}: {exc.status} {exc.text}")


def create_adapter(settings: Settings, redis: RedisClient | None = None) -> DiscordAdapter:
    return DiscordAdapter(settings, redis, DiscordSettings())
