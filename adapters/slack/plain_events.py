"""Which Events API bodies the message listener takes without Bolt's dispatch (the ack's CPU).

A plain `message` or `app_mention` delivery in the envelope Slack sends is the common case of a
burst. Bolt's dispatch of one (its request and context, the per-request web client, five
middleware, listener matching, the listener's arguments) ends in our message listener, or in
its own self-event check whose answer is the listener's for the same body. `plain_message` lets
the ingress hand such a body to the listener directly. It answers None, and Bolt takes the body
as before, for anything else and for every shape Bolt would read differently: a key of the
envelope Bolt looks into for its context (`user`, `channel`, `team`, `view`, ...), an event whose
user, channel or team is not a string, the keys Bolt falls back to for them (`user_id`,
`message`, `item`, ...), an edit or a delete (`revisions`), or a body that is not JSON.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.slack import revisions

_EVENT_TYPES = frozenset({"message", "app_mention"})
# The envelope of an `event_callback` as Slack documents it.
_ENVELOPE_KEYS = frozenset(
    {
        "token", "team_id", "enterprise_id", "context_team_id", "context_enterprise_id",
        "api_app_id", "event", "type", "event_id", "event_time", "event_context",
        "authorizations", "is_ext_shared_channel", "authed_users", "authed_teams",
    }
)  # fmt: skip
_AUTHORIZATION_KEYS = frozenset(
    {"enterprise_id", "team_id", "user_id", "is_bot", "is_enterprise_install"}
)
# Bolt reads these for the event's user (whom it checks for the bot itself), channel, team and
# enterprise, the listener the subtype: taken here only as strings.
_EVENT_STRINGS = ("type", "subtype", "user", "channel", "team", "enterprise", "bot_id")
# Where Bolt looks for a user, channel or context that the event itself does not carry.
_EVENT_ELSEWHERE = frozenset(
    {
        "user_id", "channel_id", "team_id", "enterprise_id", "message", "previous_message",
        "item", "assistant_thread", "view", "authorizations", "function_execution_id",
        "bot_access_token", "inputs",
    }
)  # fmt: skip


def plain_message(raw: bytes) -> dict[str, Any] | None:
    """The parsed body when it is a plain message or mention event; None: Bolt takes it."""
    if not raw.startswith(b"{"):
        return None
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    if not body.keys() <= _ENVELOPE_KEYS or not isinstance(body.get("team_id"), str):
        return None
    authorizations = body.get("authorizations")
    if authorizations is not None and not _plain_authorizations(authorizations):
        return None
    event = body.get("event")
    if not isinstance(event, dict) or not event.keys().isdisjoint(_EVENT_ELSEWHERE):
        return None
    for key in _EVENT_STRINGS:
        if key in event and not isinstance(event[key], str):
            return None
    if event.get("type") not in _EVENT_TYPES or event.get("subtype") in revisions.SUBTYPES:
        return None
    return body


def _plain_authorizations(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for authorization in value[:1]:  # Bolt reads the first
        if not isinstance(authorization, dict) or not authorization.keys() <= _AUTHORIZATION_KEYS:
            return False
        if not all(v is None or isinstance(v, str | bool) for v in authorization.values()):
            return False
    return True
