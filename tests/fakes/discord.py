"""A fake Discord (REST + gateway) on an ephemeral loopback port, for the real discord.py.

Enough of Discord's behaviour to matter: the message and thread rules (discord_rest.py),
interactions (slash commands, autocomplete, components, modals), reactions, edits and deletes as
gateway events, a CDN for attachments, 429s with `Via` and JSON `retry_after` (forced, or from a
per-channel write bucket; discord_faults.py), and JSON bodies with `Content-Type:
application/json` exactly. Several guilds (`add_guild`, placed on a chosen shard), each with the
bot's managed role. Every REST call is recorded.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord_cdn import FakeCdn
from tests.fakes.discord_components import ComponentActions
from tests.fakes.discord_edits import MessageEdits
from tests.fakes.discord_faults import (
    Broken,
    ChannelBucket,
    Gate,
    RateLimit,
    cut,
    forced,
    take,
)
from tests.fakes.discord_gateway import FakeGateway, GatewaySession, shard_of
from tests.fakes.discord_interactions import InteractionRoutes
from tests.fakes.discord_rest import DM, FORUM, PUBLIC_THREAD, TEXT, MessageRoutes
from tests.fakes.discord_wire import (
    DiscordError,
    Json,
    json_response,
    now_iso,
)
from tests.fakes.loopback import serve

DISCORD_EPOCH_MS = 1420070400000


@dataclass
class Call:
    method: str
    path: str
    json: Any
    status: int = 0


class FakeDiscord(InteractionRoutes, ComponentActions, MessageEdits, MessageRoutes):
    """Test helpers create users, post as them, open forum posts and DMs, invoke slash commands."""

    def __init__(self, *, token: str = "fake-bot-token") -> None:  # noqa: S107
        self.token = token
        self._ids = itertools.count(1)
        self.port = 0
        self.calls: list[Call] = []
        self.rate_limits: list[RateLimit] = []
        self.broken: list[Broken] = []
        self.gates: list[Gate] = []
        self.write_bucket: ChannelBucket | None = None
        self.channels: dict[str, Json] = {}
        self.messages: dict[str, Json] = {}
        self.threads_from_messages: dict[str, str] = {}
        self.nonces: dict[tuple[str, str], str] = {}
        self.interactions: dict[str, Json] = {}
        self.reactions: dict[str, dict[str, set[str]]] = {}
        self.cdn = FakeCdn()
        self.commands: dict[str, list[Json]] = {}
        self.members: dict[str, Json] = {}
        self.guilds: dict[str, Json] = {}
        self.recommended_shards = 1
        self.observers: list[Callable[[Json], None]] = []
        self._channel_messages: dict[str, list[int]] = {}
        self.bot = self._user("engage-bot", bot=True)
        self.application_id = self.snowflake()
        self.guild_id = self.add_guild("Fake Guild")["id"]
        self.everyone_role = self.guilds[self.guild_id]["roles"][0]
        self.staff_role = self._role(self.snowflake(), "staff")
        self.guilds[self.guild_id]["roles"].append(self.staff_role)
        self.text_channel = self.channels[self.guilds[self.guild_id]["text_channel_id"]]
        self.forum_channel = self._channel(FORUM, "help-forum")
        self.gateway = FakeGateway(
            token=token, ready_payload=self._ready, guild_payloads=self._guilds
        )
        self._runner: web.AppRunner | None = None
        self._query: Mapping[str, str] = {}
        self._changed = asyncio.Condition()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gw/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gw/", self.gateway.handler)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/cdn/{tail:.*}", self.cdn.serve)
        self._runner, self.port = await serve(app, access_log=None)
        self.cdn.base_url = f"{self.url}/cdn"

    async def close(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- ids and objects ------------------------------------------------------------------

    def snowflake(self) -> str:
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | next(self._ids))

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> Json:
        """A guild with a #general text channel; `shard=(k, n)` picks an id on shard k of n."""
        stamp = int(time.time() * 1000) - DISCORD_EPOCH_MS
        if shard is not None:
            stamp -= (stamp - shard[0]) % shard[1]
        guild_id = str((stamp << 22) | next(self._ids))
        assert shard is None or shard_of(guild_id, shard[1]) == shard[0]
        # Adding a bot creates its integration-managed role (tags.bot_id names the bot).
        bot_role = {**self._role(self.snowflake(), self.bot["username"]), "managed": True,
                    "tags": {"bot_id": self.bot["id"]}}  # fmt: skip
        guild: Json = {"id": guild_id, "name": name, "bot_role_id": bot_role["id"],
                       "roles": [self._role(guild_id, "@everyone"), bot_role]}  # fmt: skip
        self.guilds[guild_id] = guild
        guild["text_channel_id"] = self._channel(TEXT, "general", guild_id=guild_id)["id"]
        return guild

    def _user(self, name: str, *, bot: bool = False) -> Json:
        return {
            "id": self.snowflake(), "username": name, "global_name": name.title(),
            "discriminator": "0", "avatar": None, "bot": bot, "public_flags": 0,
        }  # fmt: skip

    def _role(self, role_id: str, name: str) -> Json:
        return {
            "id": role_id, "name": name, "color": 0, "hoist": False, "position": 0,
            "permissions": "1049600", "managed": False, "mentionable": False, "flags": 0,
        }  # fmt: skip

    def _channel(self, kind: int, name: str, **extra: Any) -> Json:
        guild_id = extra.pop("guild_id", None) or self.guild_id
        channel: Json = {
            "id": self.snowflake(), "type": kind, "guild_id": guild_id, "name": name,
            "position": len(self.channels), "permission_overwrites": [], "nsfw": False,
            "parent_id": None, "rate_limit_per_user": 0, "topic": None, "last_message_id": None,
            "default_auto_archive_duration": 1440, "flags": 0,
        }  # fmt: skip
        if kind == FORUM:
            channel.update(available_tags=[], default_reaction_emoji=None, default_sort_order=None)
        channel.update(extra)
        self.channels[channel["id"]] = channel
        return channel

    def user(self, name: str, *, staff: bool = False, bot: bool = False) -> Json:
        """A guild member; `staff` gives them the staff role."""
        user = self._user(name, bot=bot)
        self.members[user["id"]] = {
            "user": user, "roles": [self.staff_role["id"]] if staff else [], "nick": None,
            "joined_at": now_iso(), "deaf": False, "mute": False, "flags": 0,
        }  # fmt: skip
        return user

    def _ready(self, session: GatewaySession) -> Json:
        return {
            "v": 10, "user": self.bot,
            "guilds": [{"id": g, "unavailable": True} for g in self.guilds if session.covers(g)],
            "session_id": session.session_id, "resume_gateway_url": self.gateway_url,
            "application": {"id": self.application_id, "flags": 0}, "private_channels": [],
            "relationships": [], "shard": list(session.shard),
        }  # fmt: skip

    def _guilds(self, session: GatewaySession) -> list[Json]:
        return [self._guild_create(g) for g in self.guilds if session.covers(g)]

    def _guild_create(self, guild_id: str) -> Json:
        mine = [c for c in self.channels.values() if c.get("guild_id") == guild_id]
        guild_channels = [c for c in mine if c["type"] in (TEXT, FORUM)]
        threads = [c for c in mine if c["type"] == PUBLIC_THREAD
                   and not c["thread_metadata"]["archived"]]  # fmt: skip
        bot_member = {"user": self.bot, "roles": [], "joined_at": now_iso(), "deaf": False,
                      "mute": False, "flags": 0}  # fmt: skip
        return {
            "id": guild_id, "name": self.guilds[guild_id]["name"], "unavailable": False,
            "owner_id": "1", "channels": guild_channels, "threads": threads,
            "member_count": len(self.members) + 1, "roles": self.guilds[guild_id]["roles"],
            "members": [bot_member], "emojis": [], "stickers": [], "features": [],
            "joined_at": now_iso(), "large": False, "voice_states": [], "presences": [],
        }  # fmt: skip

    # ---- what tests do ----------------------------------------------------------------------

    def _message(self, channel_id: str, author: Json, content: str, **extra: Any) -> Json:
        channel = self.channels[channel_id]
        message = {
            "id": extra.pop("id", None) or self.snowflake(), "channel_id": channel_id,
            "author": author, "content": content, "timestamp": now_iso(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": extra.pop("mentions", []),
            "mention_roles": extra.pop("mention_roles", []), "attachments": [],
            "embeds": [], "pinned": False, "type": 0, "flags": 0, "components": [],
        }  # fmt: skip
        message.update(extra)
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
            member = self.members.get(author["id"])
            if member is not None:
                message["member"] = {k: v for k, v in member.items() if k != "user"}
        self.messages[message["id"]] = message
        bisect.insort(self._channel_messages.setdefault(channel_id, []), int(message["id"]))
        channel["last_message_id"] = message["id"]
        for observe in self.observers:
            observe(message)
        if channel["type"] == PUBLIC_THREAD:
            channel["message_count"] = channel.get("message_count", 0) + 1
        return message

    async def post(
        self,
        channel_id: str,
        author: Json,
        content: str,
        *,
        mention_bot: bool = False,
        mention_bot_role: bool = False,
        **extra: Any,
    ) -> Json:
        """A user posts a message; it is dispatched as MESSAGE_CREATE. `mention_bot_role`
        mentions the bot's managed role, as Discord's autocomplete often does."""
        if mention_bot:
            content = f"<@{self.bot['id']}> {content}"
            extra["mentions"] = [self.bot]
        if mention_bot_role:
            role_id = self.guilds[self.channels[channel_id]["guild_id"]]["bot_role_id"]
            content = f"<@&{role_id}> {content}"
            extra["mention_roles"] = [role_id]
        message = self._message(channel_id, author, content, **extra)
        await self.gateway.dispatch("MESSAGE_CREATE", message)
        return message

    def upload(
        self,
        channel_id: str,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        size: int | None = None,
    ) -> Json:
        """An attachment for `post(..., attachments=[...])`, served by the fake CDN."""
        return self.cdn.attachment(self.snowflake(), channel_id, filename, data, content_type, size)

    async def forum_post(self, author: Json, title: str, content: str) -> Json:
        """A user opens a forum post: THREAD_CREATE, then its first message (same id)."""
        thread = self._thread(self.forum_channel["id"], title, owner_id=author["id"])
        await self.gateway.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return await self.post(thread["id"], author, content, id=thread["id"])

    def dm_channel(self, user: Json) -> Json:
        channel: Json = {"id": self.snowflake(), "type": DM, "recipients": [user],
                   "last_message_id": None}  # fmt: skip
        self.channels[channel["id"]] = channel
        return channel

    async def set_thread_state(
        self, thread_id: str, *, archived: bool = False, locked: bool = False
    ) -> None:
        metadata = self.channels[thread_id]["thread_metadata"]
        metadata.update(archived=archived, locked=locked, archive_timestamp=now_iso())
        await self.gateway.dispatch("THREAD_UPDATE", self.channels[thread_id])

    def rate_limit(
        self, method: str, path: str, *, times: int = 1, retry_after: float = 0.2
    ) -> None:
        """The next `times` matching requests get a 429 (path is a regex on the API path)."""
        self.rate_limits.append(RateLimit(method, re.compile(path), times, retry_after))

    def break_next(
        self, method: str, path: str, *, times: int = 1, status: int = 200, handled: bool = False
    ) -> None:
        """The next `times` matching requests get a truncated JSON body (a broken proxy);
        `handled`: each is carried out first (a message is created), only the answer is cut."""
        self.broken.append(Broken(method, re.compile(path), times, status, handled=handled))

    def hold_next(self, method: str, path: str) -> Gate:
        """The next matching request waits before it is carried out until `gate.open()`; wait
        for it with `wait_until(lambda: gate.waiting == 1)`."""
        gate = Gate(method, re.compile(path))
        self.gates.append(gate)
        return gate

    def limit_channel_writes(self, limit: int = 5, per: float = 5.0) -> ChannelBucket:
        """Enforce Discord's per-channel message write bucket from now on."""
        self.write_bucket = ChannelBucket(limit, per)
        return self.write_bucket

    def bot_messages(self, channel_id: str) -> list[Json]:
        return [
            m for m in self.messages.values()
            if m["channel_id"] == channel_id and m["author"]["id"] == self.bot["id"]
        ]  # fmt: skip

    def calls_to(self, method: str, path: str) -> list[Call]:
        pattern = re.compile(path)
        return [c for c in self.calls if c.method == method and pattern.fullmatch(c.path)]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds, re-checked whenever a REST call lands."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    # ---- REST -----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = await request.json() if request.can_read_body else None
        call = Call(request.method, path, body)
        self._query = request.query
        self.calls.append(call)
        await self._held(request.method, path)
        try:
            response = await self._handle(request, path, body)
        except DiscordError as exc:
            response = json_response(exc.body(), status=exc.status)
        call.status = response.status
        async with self._changed:
            self._changed.notify_all()
        return response

    async def _held(self, method: str, path: str) -> None:
        for gate in self.gates:
            if not gate.caught and gate.method == method and gate.path.fullmatch(path):
                gate.caught, gate.waiting = True, gate.waiting + 1
                async with self._changed:
                    self._changed.notify_all()
                try:
                    await gate.opened.wait()
                finally:
                    gate.waiting -= 1
                return

    async def _handle(self, request: web.Request, path: str, body: Any) -> web.Response:
        is_webhook = path.startswith(("/webhooks/", "/interactions/"))
        if not is_webhook and request.headers.get("Authorization") != f"Bot {self.token}":
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        injected = forced(self.rate_limits, self.broken, request.method, path)
        if injected is not None:
            return injected
        bucket = take(self.write_bucket, request.method, path)
        if isinstance(bucket, web.Response):
            return bucket
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and method == request.method:
                response = await handler(body, *match.groups())
                response.headers.update(bucket)
                broken = cut(self.broken, request.method, path)
                return response if broken is None else broken
        raise DiscordError(404, 0, f"404: Not Found {request.method} {path}")

    def _routes(self) -> list[tuple[str, str, Callable[..., Awaitable[web.Response]]]]:
        c, n = r"(\d+)", r"([^/]+)"
        return [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/gateway/bot", self._get_gateway),
            ("GET", "/gateway", self._get_gateway),
            ("POST", f"/channels/{c}/messages", self._create_message),
            ("GET", f"/channels/{c}/messages", self._list_messages),
            ("GET", f"/channels/{c}/messages/{c}", self._get_message),
            ("PATCH", f"/channels/{c}/messages/{c}", self._edit_message),
            ("DELETE", f"/channels/{c}/messages/{c}", self._delete_message),
            ("POST", f"/channels/{c}/messages/{c}/threads", self._thread_from_message),
            ("POST", f"/channels/{c}/threads", self._thread_in_forum),
            ("GET", f"/channels/{c}", self._get_channel),
            ("POST", "/users/@me/channels", self._open_dm),
            ("POST", f"/channels/{c}/typing", self._typing),
            ("POST", f"/interactions/{c}/{n}/callback", self._interaction_callback),
            ("POST", f"/webhooks/{c}/{n}", self._followup),
            ("PATCH", f"/webhooks/{c}/{n}/messages/@original", self._edit_original),
            ("PUT", f"/applications/{c}/commands", self._sync_commands),
            ("PUT", f"/applications/{c}/guilds/{c}/commands", self._sync_commands),
        ]

    async def _get_me(self, _: Any) -> web.Response:
        return json_response(self.bot)

    async def _get_application(self, _: Any) -> web.Response:
        return json_response({
            "id": self.application_id, "name": "engage-bot", "icon": None, "description": "",
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
            "flags": 0, "owner": self._user("owner"), "team": None, "summary": "",
            "rpc_origins": [], "interactions_endpoint_url": None,
        })  # fmt: skip

    async def _get_gateway(self, _: Any) -> web.Response:
        return json_response({
            "url": self.gateway_url.rstrip("/"), "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                    "max_concurrency": self.gateway.max_concurrency},
        })  # fmt: skip

    async def _open_dm(self, body: Json) -> web.Response:
        """POST /users/@me/channels: the bot's DM with a member (the same channel every time)."""
        member = self.members.get(str(body.get("recipient_id")))
        if member is None:
            raise DiscordError(400, 50033, "Invalid Recipient(s)")
        user = member["user"]
        for channel in self.channels.values():
            if channel["type"] == DM and channel["recipients"][0]["id"] == user["id"]:
                return json_response(channel)
        return json_response(self.dm_channel(user))

    def dms_to(self, user: Json) -> list[str]:
        """What the bot said to `user` in their DM."""
        dms = [c["id"] for c in self.channels.values()
               if c["type"] == DM and c["recipients"][0]["id"] == user["id"]]  # fmt: skip
        return [m["content"] for d in dms for m in self.bot_messages(d)]
