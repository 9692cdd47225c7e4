"""Pure Block Kit and payload converters for feedback on answers: buttons, modal, reactions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.feedback import Thumbs, Vote

PLATFORM = "slack"
ACTION_UP = "engage_feedback_up"
ACTION_DOWN = "engage_feedback_down"
ACTION_COMMENT = "engage_feedback_comment"
MODAL_CALLBACK = "engage_feedback_modal"
COMMENT_BLOCK, COMMENT_INPUT = "comment", "text"
COMMENT_LIMIT = 2_000
_ACTION_THUMBS = {ACTION_UP: Thumbs.UP, ACTION_DOWN: Thumbs.DOWN}
_REACTION_THUMBS = {
    "+1": Thumbs.UP,
    "thumbsup": Thumbs.UP,
    "-1": Thumbs.DOWN,
    "thumbsdown": Thumbs.DOWN,
}


def answer_blocks(markdown: str, run_id: str) -> list[dict[str, Any]]:
    """The answer as a `markdown` block (standard Markdown, like `markdown_text`) and buttons
    whose `value` is the run that produced it."""

    def button(action_id: str, label: str) -> dict[str, Any]:
        text = {"type": "plain_text", "text": label, "emoji": True}
        return {"type": "button", "action_id": action_id, "text": text, "value": run_id}

    return [
        {"type": "markdown", "text": markdown},
        {
            "type": "actions",
            "block_id": "engage_feedback",
            "elements": [
                button(ACTION_UP, ":+1:"),
                button(ACTION_DOWN, ":-1:"),
                button(ACTION_COMMENT, "Comment"),
            ],
        },
    ]


def _team(body: Mapping[str, Any]) -> str:
    team = body.get("team") or {}
    user = body.get("user") or {}
    return str(team.get("id") or user.get("team_id") or "")


def vote_from_action(body: Mapping[str, Any]) -> Vote | None:
    """A 👍/👎 click; the click's `action_ts` makes a redelivery the same delivery."""
    actions = body.get("actions") or []
    user = (body.get("user") or {}).get("id")
    if not actions or not user:
        return None
    action = actions[0]
    thumbs = _ACTION_THUMBS.get(str(action.get("action_id")))
    run_id = str(action.get("value") or "")
    if thumbs is None or not run_id:
        return None
    delivery = f"{_team(body)}:{user}:action:{action.get('action_ts')}"
    return Vote(run_id, PLATFORM, str(user), delivery, thumbs)


@dataclass(frozen=True, slots=True)
class Place:
    """Where to show an ephemeral acknowledgement."""

    channel: str
    thread: str


def place_of_action(body: Mapping[str, Any]) -> Place | None:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    if not channel:
        return None
    message = body.get("message") or {}
    thread = container.get("thread_ts") or message.get("thread_ts") or container.get("message_ts")
    return Place(str(channel), str(thread or ""))


def comment_modal(run_id: str, place: Place | None) -> dict[str, Any]:
    metadata = {"run": run_id, "channel": place.channel if place else "", "thread": ""}
    if place is not None:
        metadata["thread"] = place.thread
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": "Feedback"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": COMMENT_BLOCK,
                "label": {"type": "plain_text", "text": "What should the agent do better?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": COMMENT_INPUT,
                    "multiline": True,
                    "max_length": COMMENT_LIMIT,
                },
            }
        ],
    }


def vote_from_view(body: Mapping[str, Any]) -> tuple[Vote, Place | None] | None:
    """A submitted comment modal; the view id is unique per opened modal."""
    view = body.get("view") or {}
    user = (body.get("user") or {}).get("id")
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return None
    values = (view.get("state") or {}).get("values") or {}
    comment = ((values.get(COMMENT_BLOCK) or {}).get(COMMENT_INPUT) or {}).get("value")
    run_id = metadata.get("run") if isinstance(metadata, dict) else None
    if not (user and run_id and isinstance(comment, str) and comment.strip()):
        return None
    delivery = f"{_team(body)}:{user}:view:{view.get('id')}"
    vote = Vote(str(run_id), PLATFORM, str(user), delivery, comment=comment[:COMMENT_LIMIT])
    channel = str(metadata.get("channel") or "")
    return vote, Place(channel, str(metadata.get("thread") or "")) if channel else None


@dataclass(frozen=True, slots=True)
class Reaction:
    """A 👍/👎 reaction added to or removed from a message."""

    team: str
    user: str
    channel: str
    message_ts: str
    thumbs: Thumbs
    added: bool
    delivery: str


def reaction_of(body: Mapping[str, Any]) -> Reaction | None:
    event = body.get("event") or {}
    item = event.get("item") or {}
    name = str(event.get("reaction") or "").split("::")[0]  # "+1::skin-tone-2"
    thumbs = _REACTION_THUMBS.get(name)
    user, channel, ts = event.get("user"), item.get("channel"), item.get("ts")
    if thumbs is None or item.get("type") != "message" or not (user and channel and ts):
        return None
    team = str(body.get("team_id") or "")
    added = event.get("type") == "reaction_added"
    # Slack's retries repeat the event_ts; a new reaction has a new one.
    delivery = f"{team}:{user}:reaction:{name}:{int(added)}:{event.get('event_ts')}"
    return Reaction(team, str(user), str(channel), str(ts), thumbs, added, delivery)
