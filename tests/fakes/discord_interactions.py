"""Slash commands on the fake Discord: INTERACTION_CREATE, callbacks, followups, command sync."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_components import check_modal
from tests.fakes.discord_wire import DiscordError, Json, json_response, wire

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import FakeGateway

LOADING = 1 << 7
EPHEMERAL = 1 << 6
APPLICATION_COMMAND, AUTOCOMPLETE = 2, 4
AUTOCOMPLETE_RESULT = 8
MESSAGE_COMPONENT, DEFERRED_UPDATE, MODAL = 3, 6, 9
MAX_CHOICES = 25


class InteractionRoutes:
    """Mixed into FakeDiscord; uses its ids, channels, members, messages and gateway."""

    application_id: str
    guild_id: str
    bot: Json
    channels: dict[str, Json]
    members: dict[str, Json]
    interactions: dict[str, Json]
    commands: dict[str, list[Json]]
    gateway: FakeGateway
    _query: Mapping[str, str]

    def snowflake(self) -> str:
        raise NotImplementedError

    def _message(self, channel_id: str, author: Json, content: str, **extra: Any) -> Json:
        raise NotImplementedError

    async def slash(
        self, name: str, user: Json, channel_id: str, options: list[Json] | None = None
    ) -> Json:
        """A user invokes a slash command: INTERACTION_CREATE (application command)."""
        return await self._interact(APPLICATION_COMMAND, name, user, channel_id, options)

    async def autocomplete(self, name: str, user: Json, channel_id: str, option: Json) -> Json:
        """A user types into a command's autocomplete option: INTERACTION_CREATE type 4, with
        the typed option marked `focused` (its partial value as a string)."""
        focused = {**option, "focused": True}
        return await self._interact(AUTOCOMPLETE, name, user, channel_id, [focused])

    async def _interact(
        self,
        kind: int,
        name: str,
        user: Json,
        channel_id: str,
        options: list[Json] | None,
        data: Json | None = None,
        **extra: Any,
    ) -> Json:
        channel = self.channels[channel_id]
        interaction: Json = {
            "id": self.snowflake(), "application_id": self.application_id, "type": kind,
            "token": f"itoken-{self.snowflake()}", "version": 1, "channel_id": channel_id,
            "channel": channel, "locale": "en-US", "attachment_size_limit": 8388608,
            "app_permissions": "0", "entitlements": [], "authorizing_integration_owners": {},
            "context": 0,
            "data": data or {"id": self.snowflake(), "name": name, "type": 1,
                             "options": options or []},
            **extra,
        }  # fmt: skip
        if channel.get("guild_id"):
            member = self.members[user["id"]]
            interaction.update(guild_id=channel["guild_id"], guild_locale="en-US",
                               member={**member, "permissions": "0"})  # fmt: skip
        else:
            interaction.update(user=user, context=1)
        self.interactions[interaction["token"]] = {"interaction": interaction, "responses": []}
        await self.gateway.dispatch("INTERACTION_CREATE", interaction)
        return interaction

    async def redeliver(self, interaction: Json) -> None:
        """The same INTERACTION_CREATE once more (a RESUME replaying it, say)."""
        await self.gateway.dispatch("INTERACTION_CREATE", interaction)

    def _interaction(self, token: str) -> Json:
        record = self.interactions.get(token)
        if record is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return record

    async def _interaction_callback(self, body: Json, _: str, token: str) -> web.Response:
        record = self._interaction(token)
        if record["responses"]:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        interaction = record["interaction"]
        if (interaction["type"] == AUTOCOMPLETE) != (body["type"] == AUTOCOMPLETE_RESULT):
            raise DiscordError(400, 50035, "Invalid interaction response type for this interaction")
        if body["type"] == AUTOCOMPLETE_RESULT:
            choices = (body.get("data") or {}).get("choices") or []
            if len(choices) > MAX_CHOICES or any(not 1 <= len(c["name"]) <= 100 for c in choices):
                raise DiscordError(400, 50035, "Invalid Form Body")
            record["responses"].append(body)
            return web.Response(status=204)
        if body["type"] == MODAL:
            check_modal(body.get("data") or {})
        if body["type"] in (MODAL, DEFERRED_UPDATE):
            if body["type"] == DEFERRED_UPDATE and interaction["type"] != MESSAGE_COMPONENT:
                raise DiscordError(400, 50035, "Invalid interaction response type")
            record["responses"].append(body)
            return web.Response(status=204)
        record["responses"].append(body)
        flags = (body.get("data") or {}).get("flags", 0)
        loading = body["type"] == 5
        original = self._message(
            interaction["channel_id"], self.bot, (body.get("data") or {}).get("content") or "",
            type=20, flags=flags | (LOADING if loading else 0), interaction_id=interaction["id"],
        )  # fmt: skip
        record["original"] = original
        if self._query.get("with_response") not in ("1", "true"):
            return web.Response(status=204)
        return json_response({
            "interaction": {
                "id": interaction["id"], "type": interaction["type"],
                "response_message_id": original["id"], "response_message_loading": loading,
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            },
            "resource": {"type": body["type"], "message": wire(original)},
        })  # fmt: skip

    async def _followup(self, body: Json, _: str, token: str) -> web.Response:
        """The first followup after a deferral fills in the loading message; later ones add."""
        record = self._interaction(token)
        if not record["responses"]:
            raise DiscordError(404, 10015, "Unknown Webhook")
        followups = record.setdefault("followups", [])
        original = record["original"]
        if not followups and original["flags"] & LOADING:
            original.update(content=body.get("content") or "", flags=original["flags"] & ~LOADING)
            message = original
        else:
            message = self._message(
                original["channel_id"], self.bot, body.get("content") or "", type=20,
                flags=body.get("flags", 0),
            )  # fmt: skip
        message["allowed_mentions"] = body.get("allowed_mentions")
        followups.append(message)
        return json_response(wire(message))

    async def _edit_original(self, body: Json, _: str, token: str) -> web.Response:
        record = self._interaction(token)
        record.setdefault("edits", []).append(body)
        channel_id = record["interaction"]["channel_id"]
        return json_response(wire(self._message(channel_id, self.bot, body.get("content") or "")))

    async def _sync_commands(self, body: list[Json], *ids: str) -> web.Response:
        scope = ids[1] if len(ids) > 1 else "global"
        synced = [
            {
                **cmd,
                "id": self.snowflake(),
                "application_id": self.application_id,
                "version": "1",
                "default_member_permissions": None,
            }
            for cmd in body
        ]
        self.commands[scope] = synced
        return json_response(synced)
