"""Channel, message and thread routes of the fake Discord's REST API, with Discord's rules:
2,000-char content, 25-char nonces deduplicated with `enforce_nonce`, component limits, forum
channels taking threads only, thread id == message id and 160004 on a second thread, archived
threads unarchived by a post and locked ones refused (160005), history pages newest first."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_components import check_components
from tests.fakes.discord_wire import (
    DiscordError,
    Json,
    form_error,
    json_response,
    now_iso,
    rest_message,
    wire,
)

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import FakeGateway

TEXT, DM, FORUM, PUBLIC_THREAD = 0, 1, 15, 11
MAX_CONTENT = 2000
MAX_PAGE = 100
SETTABLE_FLAGS = (1 << 2) | (1 << 12)  # SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS


class MessageRoutes:
    """Mixed into FakeDiscord, whose state (channels, messages, nonces, gateway) it uses."""

    bot: Json
    channels: dict[str, Json]
    messages: dict[str, Json]
    nonces: dict[tuple[str, str], str]
    threads_from_messages: dict[str, str]
    gateway: FakeGateway
    _channel_messages: dict[str, list[int]]
    _query: Mapping[str, str]

    def snowflake(self) -> str:
        raise NotImplementedError

    def _channel(self, kind: int, name: str, **extra: Any) -> Json:
        raise NotImplementedError

    def _message(self, channel_id: str, author: Json, content: str, **extra: Any) -> Json:
        raise NotImplementedError

    async def set_thread_state(
        self, thread_id: str, *, archived: bool = False, locked: bool = False
    ) -> None:
        raise NotImplementedError

    async def remove(self, message: Json) -> None:
        raise NotImplementedError

    def _existing_channel(self, channel_id: str) -> Json:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _existing_message(self, channel_id: str, message_id: str) -> Json:
        message = self.messages.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _create_message(self, body: Json, channel_id: str) -> web.Response:
        channel = self._existing_channel(channel_id)
        content = body.get("content") or ""
        if len(content) > MAX_CONTENT:
            raise form_error("content", f"Must be {MAX_CONTENT} or fewer in length.")
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            raise form_error("nonce", "Must be 25 or fewer in length.")
        if channel["type"] == FORUM:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        check_components(body.get("components") or [])
        if body.get("enforce_nonce") and nonce is not None:
            earlier = self.nonces.get((self.bot["id"], str(nonce)))
            if earlier is not None:
                return json_response(self.messages[earlier])
        metadata = channel.get("thread_metadata")
        if metadata is not None:
            if metadata["locked"]:
                raise DiscordError(403, 160005, "Thread is locked")
            if metadata["archived"]:
                await self.set_thread_state(channel_id, archived=False)
        message = self._message(
            channel_id, self.bot, content, nonce=nonce,
            allowed_mentions=body.get("allowed_mentions"),
            flags=int(body.get("flags") or 0) & SETTABLE_FLAGS,
            components=body.get("components") or [],
        )  # fmt: skip
        if nonce is not None:
            self.nonces[(self.bot["id"], str(nonce))] = message["id"]
        await self.gateway.dispatch("MESSAGE_CREATE", wire(message))
        return json_response(wire(message))

    async def _list_messages(self, _: Any, channel_id: str) -> web.Response:
        """GET messages with `after` (or none): the oldest `limit` after it, newest first."""
        self._existing_channel(channel_id)
        limit = int(self._query.get("limit", 50))
        if not 1 <= limit <= MAX_PAGE:
            raise form_error("limit", f"Must be between 1 and {MAX_PAGE}.")
        ids = self._channel_messages.get(channel_id, [])
        if "after" in self._query:
            start = bisect.bisect_right(ids, int(self._query["after"]))
            page = ids[start : start + limit]
        else:
            page = ids[-limit:]
        return json_response([rest_message(self.messages[str(i)]) for i in reversed(page)])

    async def _get_message(self, _: Any, channel_id: str, message_id: str) -> web.Response:
        return json_response(wire(self._existing_message(channel_id, message_id)))

    async def _edit_message(self, body: Json, channel_id: str, message_id: str) -> web.Response:
        message = self._existing_message(channel_id, message_id)
        if "content" in body:
            if len(body["content"] or "") > MAX_CONTENT:
                raise form_error("content", f"Must be {MAX_CONTENT} or fewer in length.")
            message.update(content=body["content"], edited_timestamp=now_iso())
        if "components" in body:
            message["components"] = body["components"] or []
        await self.gateway.dispatch("MESSAGE_UPDATE", wire(message))
        return json_response(wire(message))

    async def _delete_message(self, _: Any, channel_id: str, message_id: str) -> web.Response:
        await self.remove(self._existing_message(channel_id, message_id))
        return web.Response(status=204)

    def _thread(
        self, parent_id: str, name: str, *, owner_id: str, thread_id: str | None = None
    ) -> Json:
        return self._channel(
            PUBLIC_THREAD, name[:100], id=thread_id or self.snowflake(), parent_id=parent_id,
            guild_id=self.channels[parent_id]["guild_id"],
            owner_id=owner_id, message_count=0, member_count=1, total_message_sent=0,
            thread_metadata={"archived": False, "auto_archive_duration": 1440, "locked": False,
                             "archive_timestamp": now_iso(), "create_timestamp": now_iso()},
        )  # fmt: skip

    async def _thread_from_message(
        self, body: Json, channel_id: str, message_id: str
    ) -> web.Response:
        channel = self._existing_channel(channel_id)
        self._existing_message(channel_id, message_id)
        if channel["type"] != TEXT:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if message_id in self.threads_from_messages:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        if not 1 <= len(body.get("name") or "") <= 100:
            raise form_error("name", "Must be between 1 and 100 in length.")
        thread = self._thread(
            channel_id, body["name"], owner_id=self.bot["id"], thread_id=message_id
        )
        self.threads_from_messages[message_id] = thread["id"]
        await self.gateway.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return json_response(thread, status=201)

    async def _thread_in_forum(self, body: Json, channel_id: str) -> web.Response:
        channel = self._existing_channel(channel_id)
        if channel["type"] != FORUM:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        thread = self._thread(channel_id, body["name"], owner_id=self.bot["id"])
        await self.gateway.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        starter = self._message(thread["id"], self.bot, body["message"].get("content", ""),
                                id=thread["id"])  # fmt: skip
        return json_response({**thread, "message": wire(starter)}, status=201)

    async def _get_channel(self, _: Any, channel_id: str) -> web.Response:
        return json_response(self._existing_channel(channel_id))

    async def _typing(self, _: Any, channel_id: str) -> web.Response:
        self._existing_channel(channel_id)
        return web.Response(status=204)
