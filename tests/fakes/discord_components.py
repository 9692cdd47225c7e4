"""Message components, modals and reactions on the fake Discord: what a person does to a
posted message (click a button, submit a modal, add or remove a reaction), as gateway events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.discord_wire import Json, form_error, wire

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import FakeGateway

MESSAGE_COMPONENT, MODAL_SUBMIT = 3, 5
ACTION_ROW, BUTTON, TEXT_INPUT = 1, 2, 4
MAX_ROWS, MAX_PER_ROW, MAX_CUSTOM_ID, MAX_LABEL = 5, 5, 100, 80
MAX_MODAL_TITLE, MAX_INPUT_LABEL = 45, 45


def check_components(rows: list[Json]) -> None:
    """Discord's limits on a message's components: <= 5 action rows of <= 5 buttons, custom ids
    <= 100 chars and unique, labels <= 80 (400/50035 otherwise)."""
    if len(rows) > MAX_ROWS:
        raise form_error("components", f"Must be {MAX_ROWS} or fewer in length.")
    seen: set[str] = set()
    for row in rows:
        items = row.get("components") or []
        if row.get("type") != ACTION_ROW or not 1 <= len(items) <= MAX_PER_ROW:
            raise form_error("components", "Invalid action row.")
        for item in items:
            custom_id = str(item.get("custom_id") or "")
            if not 1 <= len(custom_id) <= MAX_CUSTOM_ID or custom_id in seen:
                raise form_error("components", "Invalid or duplicate custom_id.")
            if len(str(item.get("label") or "")) > MAX_LABEL:
                raise form_error("components", f"Label must be {MAX_LABEL} or fewer in length.")
            seen.add(custom_id)


def check_modal(data: Json) -> None:
    """A modal: a title <= 45 chars, 1-5 components, text input labels <= 45."""
    if not 1 <= len(str(data.get("title") or "")) <= MAX_MODAL_TITLE:
        raise form_error("title", f"Must be between 1 and {MAX_MODAL_TITLE} in length.")
    rows = data.get("components") or []
    if not 1 <= len(rows) <= MAX_ROWS or not 1 <= len(str(data.get("custom_id") or "")) <= 100:
        raise form_error("components", "Invalid modal.")
    for row in rows:
        for item in [row.get("component"), *(row.get("components") or [])]:
            label = str((item or {}).get("label") or row.get("label") or "")
            if item and item.get("type") == TEXT_INPUT and len(label) > MAX_INPUT_LABEL:
                raise form_error("label", f"Must be {MAX_INPUT_LABEL} or fewer in length.")


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
