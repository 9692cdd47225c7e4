"""Message components, modals and reactions on the fake Discord: what a person does to a
posted message (click a button, submit a modal, add or remove a reaction), as gateway events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.discord_wire import Json, wire

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import FakeGateway

MESSAGE_COMPONENT, MODAL_SUBMIT = 3, 5
BUTTON, TEXT_INPUT = 2, 4


class ComponentActions:
    """Mixed into FakeDiscord; `_interact` comes from InteractionRoutes."""

    channels: dict[str, Json]
    members: dict[str, Json]
    messages: dict[str, Json]
    reactions: dict[str, dict[str, set[str]]]
    gateway: FakeGateway

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
        raise NotImplementedError

    async def click(self, user: Json, message: Json, custom_id: str) -> Json:
        """A person clicks a button on `message`: INTERACTION_CREATE type 3."""
        buttons = [
            c for row in message.get("components") or () for c in row.get("components") or ()
        ]
        assert any(b.get("custom_id") == custom_id for b in buttons), f"no button {custom_id}"
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._interact(
            MESSAGE_COMPONENT, "", user, message["channel_id"], None, data, message=wire(message)
        )

    async def submit_modal(
        self, user: Json, channel_id: str, custom_id: str, values: dict[str, str]
    ) -> Json:
        """A person submits a modal the bot showed: INTERACTION_CREATE type 5."""
        rows = [
            {"type": 1, "components": [{"type": TEXT_INPUT, "custom_id": k, "value": v}]}
            for k, v in values.items()
        ]
        data = {"custom_id": custom_id, "components": rows}
        return await self._interact(MODAL_SUBMIT, "", user, channel_id, None, data)

    async def react(self, user: Json, message: Json, emoji: str, *, add: bool = True) -> None:
        """MESSAGE_REACTION_ADD (or _REMOVE) with a unicode emoji, as Discord sends them."""
        users = self.reactions.setdefault(message["id"], {}).setdefault(emoji, set())
        if add:
            users.add(user["id"])
        else:
            users.discard(user["id"])
        channel = self.channels[message["channel_id"]]
        event: Json = {
            "user_id": user["id"], "channel_id": message["channel_id"],
            "message_id": message["id"], "emoji": {"id": None, "name": emoji},
            "burst": False, "type": 0,
        }  # fmt: skip
        if channel.get("guild_id"):
            event["guild_id"] = channel["guild_id"]
            if add:
                member = self.members.get(user["id"], {})
                event["member"] = {**member, "user": user}
                event["message_author_id"] = message["author"]["id"]
        name = "MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE"
        await self.gateway.dispatch(name, event)
