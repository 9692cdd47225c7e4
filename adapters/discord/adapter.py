"""The Discord adapter: gateway listener, slash commands, feedback, and the outbound half."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import discord

from adapters.discord import access, commands
from adapters.discord.agents import AgentNames, HasEngage, PlatformCalls, choices
from adapters.discord.catchup import CatchUp, GapRecovery
from adapters.discord.client import (
    BAD_TOKEN_HELP,
    MISSING_INTENT_HELP,
    build_client,
    capture_message_payloads,
    capture_reactions,
    capture_revisions,
    capture_session_starts,
    channel_facts,
)
from adapters.discord.errors import CALL_FAILED
from adapters.discord.events import BotFacts, ChannelFacts, ChannelKind, to_event
from adapters.discord.feedback import (
    Feedback,
    Reaction,
    answer_ref,
    reaction_thumbs,
)
from adapters.discord.files import Attachments
from adapters.discord.outbound import Outbound
from adapters.discord.revisions import UPDATE, Revision, deleted_key, edited_payload
from adapters.discord.settings import DiscordSettings
from bridge.adapter import Inbox
from bridge.config import Settings
from bridge.edits import Revisions
from bridge.engage.errors import EngageError
from bridge.errors import ConfigError, PlatformError, StorageUnavailable
from bridge.models import InboundMessage, Reply, ThreadKey
from bridge.outbound import send_retry
from bridge.threadmap import RedisClient, ThreadMap

log = logging.getLogger(__name__)

_SUBMIT_DELAYS = (0.2, 0.5, 1, 2, 5, 10, 15, 30)
_GATEWAY_READY_SECONDS = 60.0

Pending = tuple[Mapping[str, Any], ChannelFacts | None] | CatchUp | Revision


class DiscordAdapter:
    """`start` logs in over REST (enough to send); listener processes also open the gateway."""

    name = "discord"
    # Typing shows ~10 s per call: the worker's status always starts the typing loop (which goes
    # on from the accept sign) rather than skipping it as a repeat (bridge.adapter.LastingSign).
    sign_seconds = 0.0

    def __init__(
        self,
        settings: Settings,
        redis: RedisClient | None = None,
        options: DiscordSettings | None = None,
        **client_options: Any,
    ) -> None:
        # Without `redis` (adapter-only tests) there is no gap recovery after a re-IDENTIFY.
        self._options = options or settings.platform(DiscordSettings)
        if self._options.bot_token is None:
            raise ConfigError("the Discord adapter needs DISCORD_BOT_TOKEN")
        self._settings = settings
        self._token = self._options.bot_token.get_secret_value()
        self._client = build_client(self._options, **client_options)
        self._pending: asyncio.Queue[Pending] = asyncio.Queue()
        self._recovery = None if redis is None else GapRecovery(redis, self._client.http)
        ttl = settings.thread_idle_ttl_seconds
        self._threads = None if redis is None else ThreadMap(redis, idle_ttl_seconds=ttl)
        self._feedback = None if redis is None else Feedback(redis, self._engage)
        self._background: set[asyncio.Task[None]] = set()
        self._outbound = Outbound(
            self._client,
            self._options,
            self._feedback,
            settings.max_reply_parts,
            retry=send_retry(settings),
        )
        self._files = Attachments(self._options)
        follow_up = settings.file.policy.edits_after_answer == "follow_up"
        self._revisions = None if redis is None else Revisions(redis, follow_up_edits=follow_up)
        self._connected = asyncio.Event()
        self._gateway: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._bot: BotFacts | None = None
        self._agents = AgentNames(settings.file.routing.all_agents())
        self._tree = commands.install(self._client, self)
        self._client.event(self.on_connect)
        self._client.event(self.on_resumed)
        capture_message_payloads(self._client, self._enqueue)
        capture_revisions(self._client, self._enqueue_revision)
        if self._feedback is not None:
            self._client.event(self.on_interaction)
            capture_reactions(self._client, self._on_reaction)
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

    def _engage(self) -> PlatformCalls | None:
        return self._inbox.engage if isinstance(self._inbox, HasEngage) else None

    async def agent_choices(self, typed: str) -> list[tuple[str, str]]:
        """(label, agent name) for the `/agent` autocomplete."""
        return choices(await self._agents.known(self._engage()), typed)

    # ---- feedback --------------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        assert self._feedback is not None
        try:
            await self._feedback.on_interaction(interaction)
        except CALL_FAILED as exc:
            log.warning("discord: feedback interaction %s failed: %s", interaction.id, exc)

    def _on_reaction(self, payload: Mapping[str, Any], added: bool, delivery_id: str) -> None:
        thumbs = reaction_thumbs((payload.get("emoji") or {}).get("name"))
        if thumbs is None or self._bot is None or str(payload["user_id"]) == self._bot.user_id:
            return
        ref = answer_ref(payload.get("guild_id"), payload["channel_id"], payload["message_id"])
        reaction = Reaction(ref, str(payload["user_id"]), thumbs, added, delivery_id)
        task = asyncio.create_task(self._reacted(reaction))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reacted(self, reaction: Reaction) -> None:
        assert self._feedback is not None
        try:
            await self._feedback.on_reaction(reaction)
        except (EngageError, StorageUnavailable) as exc:
            log.warning("discord: reaction on %s not recorded: %s", reaction.ref.message_id, exc)

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
        except CALL_FAILED as exc:
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
        await commands.sync(self._tree, self._options.guild_ids)

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
        self._outbound.close()
        await self._files.aclose()
        for task in self._background:
            task.cancel()
        await self._client.close()
        if self._gateway is not None:
            self._gateway.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._gateway

    # ---- inbound ---------------------------------------------------------------------------

    def _enqueue(self, payload: Mapping[str, Any], facts: ChannelFacts | None) -> None:
        self._pending.put_nowait((payload, facts))

    def _enqueue_revision(
        self, event: str, payload: Mapping[str, Any], facts: ChannelFacts | None
    ) -> None:
        self._pending.put_nowait(Revision(event, payload, facts))

    async def _consume(self, inbox: Inbox) -> None:
        while True:
            item = await self._pending.get()
            if isinstance(item, CatchUp):
                await self._catch_up(inbox, item)
            elif isinstance(item, Revision):
                await self._revise(inbox, item)
            elif await self._handle(inbox, *item) and self._recovery is not None:
                await self._recovery.handled(item[0])

    async def _handle(
        self, inbox: Inbox, payload: Mapping[str, Any], facts: ChannelFacts | None
    ) -> bool:
        try:
            message = await self._normalize(payload, facts)
            if message is not None:
                message = await self._files.inline(message)
                await self.submit(inbox, message)
        except Exception:
            log.exception("discord: could not handle message %s", payload.get("id"))
            return False
        return True

    async def _revise(self, inbox: Inbox, item: Revision) -> None:
        """An edit or a delete (bridge.edits decides what it means for the conversation)."""
        if self._revisions is None:
            return
        payload = item.payload
        try:
            if item.event == UPDATE:
                edited = edited_payload(payload)
                message = None if edited is None else await self._normalize(edited, item.facts)
                if message is not None:
                    message = await self._files.inline(message)
                    edit_id = str(payload["edited_timestamp"])
                    await self._revisions.edited(inbox, message, edit_id)
                return
            facts = item.facts or await self._facts(payload)
            key = None if facts is None else deleted_key(payload, facts)
            if key is not None:
                is_dm = payload.get("guild_id") is None
                await self._revisions.deleted(inbox, key, str(payload["id"]), is_dm=is_dm)
        except Exception:
            log.exception("discord: could not handle %s of %s", item.event, payload.get("id"))

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
            facts = await self._facts(payload)
            if facts is None:
                return None
        facts = facts or ChannelFacts(kind=_dm_or_other(payload))
        return to_event(payload, self._with_bot_role(facts, payload.get("guild_id")), self.bot)

    async def _facts(self, payload: Mapping[str, Any]) -> ChannelFacts | None:
        """The channel looked up over REST (not cached); None when it cannot be seen."""
        if payload.get("guild_id") is None:
            return ChannelFacts(ChannelKind.DM)
        try:
            fetched = await self._client.fetch_channel(int(payload["channel_id"]))
        except CALL_FAILED as exc:
            log.warning("discord: channel %s not visible: %s", payload["channel_id"], exc)
            return None
        return channel_facts(fetched)

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
        return await self._outbound.send(reply)

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None:
        await access.tell(self._client, user_id, text)

    async def refusal(self, message: InboundMessage, command: str) -> str:
        """Why the sender of a slash command may not run it ("" if they may)."""
        return await access.refusal(self._threads, message, command, self._settings.file.staff)

    async def show_accepted(self, thread: ThreadKey) -> None:
        await self._outbound.sign(thread)

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        await self._outbound.set_status(thread, status)

    def typing_threads(self) -> set[ThreadKey]:
        return self._outbound.typing_threads()


def _dm_or_other(payload: Mapping[str, Any]) -> ChannelKind:
    return ChannelKind.DM if payload.get("guild_id") is None else ChannelKind.OTHER


def create_adapter(settings: Settings, redis: RedisClient | None = None) -> DiscordAdapter:
    return DiscordAdapter(settings, redis)
