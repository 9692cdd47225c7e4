"""People editing and deleting their messages on the fake Discord: MESSAGE_UPDATE carries the
whole edited message with `edited_timestamp`; MESSAGE_DELETE only ids (no author, no content)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fakes.discord_wire import Json, now_iso, wire

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import FakeGateway


class MessageEdits:
    """Mixed into FakeDiscord."""

    messages: dict[str, Json]
    _channel_messages: dict[str, list[int]]
    gateway: FakeGateway

    async def edit(self, message: Json, content: str) -> Json:
        """The author edits `message`."""
        message.update(content=content, edited_timestamp=now_iso())
        await self.gateway.dispatch("MESSAGE_UPDATE", wire(message))
        return message

    async def delete(self, message: Json) -> None:
        """The author (or a moderator) deletes `message`."""
        await self.remove(message)

    async def remove(self, message: Json) -> None:
        del self.messages[message["id"]]
        self._channel_messages[message["channel_id"]].remove(int(message["id"]))
        event: Json = {"id": message["id"], "channel_id": message["channel_id"]}
        if message.get("guild_id"):
            event["guild_id"] = message["guild_id"]
        await self.gateway.dispatch("MESSAGE_DELETE", event)

    async def delete_bulk(self, messages: list[Json]) -> None:
        """A moderator bulk-deletes messages of one channel: one MESSAGE_DELETE_BULK."""
        channel_id = messages[0]["channel_id"]
        for message in messages:
            del self.messages[message["id"]]
            self._channel_messages[channel_id].remove(int(message["id"]))
        event: Json = {"ids": [m["id"] for m in messages], "channel_id": channel_id}
        if messages[0].get("guild_id"):
            event["guild_id"] = messages[0]["guild_id"]
        await self.gateway.dispatch("MESSAGE_DELETE_BULK", event)
