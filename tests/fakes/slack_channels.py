"""Channel facts for the fake Slack: conversations.info / .members and chat.postEphemeral."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Slack refuses ephemeral posts to users who are not in the channel, and does not list members
# of (or describe) private channels the bot is not in.
NOT_IN_CHANNEL = "user_not_in_channel"
CHANNEL_NOT_FOUND = "channel_not_found"


class ChannelError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class Channel:
    id: str
    private: bool = False
    members: set[str] = field(default_factory=set)  # empty for a public channel: anyone
    bot_member: bool = True
    im_user: str | None = None  # a DM with the bot: the other party


@dataclass
class Channels:
    """Every channel not declared here is public (C...) or a DM (D...) with `dm_users`."""

    declared: dict[str, Channel] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    page_size_cap: int = 1000

    def private(self, channel: str, members: set[str], *, bot_member: bool = True) -> None:
        self.declared[channel] = Channel(channel, True, set(members), bot_member)

    def dm(self, channel: str, user: str) -> None:
        self.declared[channel] = Channel(channel, True, {user}, True, im_user=user)

    def get(self, channel: str) -> Channel:
        found = self.declared.get(channel)
        if found is None:
            return Channel(channel)
        if found.private and not found.bot_member:
            raise ChannelError(CHANNEL_NOT_FOUND)
        return found

    def info(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self.get(str(args.get("channel")))
        im = ch.im_user is not None
        facts: dict[str, Any] = {
            "id": ch.id, "name": ch.id.lower(), "is_channel": not ch.private,
            "is_group": ch.private and not im, "is_im": im, "is_mpim": False,
            "is_private": ch.private, "is_member": ch.bot_member,
        }  # fmt: skip
        if im:
            facts["user"] = ch.im_user
        return {"channel": facts}

    def members(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self.get(str(args.get("channel")))
        everyone = sorted(ch.members)
        limit = min(int(args.get("limit") or 100), self.page_size_cap)
        start = int(args.get("cursor") or 0)
        page = everyone[start : start + limit]
        more = start + limit < len(everyone)
        return {
            "members": page,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self.get(str(args.get("channel")))
        user = str(args.get("user"))
        if ch.private and user not in ch.members:
            raise ChannelError(NOT_IN_CHANNEL)
        self.ephemerals.append({"channel": ch.id, **args})
        return {"message_ts": "1700000000.000001"}

    def told(self, user: str) -> list[str]:
        return [str(e.get("text")) for e in self.ephemerals if e.get("user") == user]
