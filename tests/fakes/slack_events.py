"""Slack event payloads as Slack sends them, and signed deliveries to the bridge's endpoint."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.fakes.slack import FakeSlack, Workspace

_event_ids = itertools.count(1)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def envelope(
    slack: FakeSlack, event: dict[str, Any], workspace: Workspace | None = None
) -> dict[str, Any]:
    """Wrap an inner event in the Events API `event_callback` body, as Slack sends it to the
    installation `workspace` (default: the fake's own); org-wide installs get the workspace's
    team id in `team_id` and no team in their authorization."""
    ws = workspace or slack.home
    team = str(event.get("team") or ws.team_id)
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "enterprise_id": ws.enterprise_id,
        "context_team_id": team,
        "context_enterprise_id": ws.enterprise_id,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": ws.enterprise_id,
                "team_id": None if ws.org_wide else ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": ws.org_wide,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": uuid.uuid4().hex,
    }


def user_message(
    slack: FakeSlack,
    *,
    channel: str = "C0001",
    user: str = "U0001",
    text: str = "hello",
    thread_ts: str | None = None,
    channel_type: str = "channel",
    kind: str = "message",
    record: bool = True,
    team: str | None = None,
) -> dict[str, Any]:
    """A user's post as `message` (or `app_mention`); recorded in the fake like Slack would."""
    ts = slack.next_ts()
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "text": text,
        "ts": ts,
        "team": team or slack.team_id,
        "channel": channel,
        "event_ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "blocks": [],
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
    if record:
        slack.add_user_message(channel, {k: v for k, v in event.items() if k != "channel"})
    return event


def as_mention(slack: FakeSlack, message: dict[str, Any]) -> dict[str, Any]:
    """The `app_mention` twin Slack sends alongside the `message` for the same post."""
    twin = {k: v for k, v in message.items() if k != "channel_type"}
    twin["type"] = "app_mention"
    return twin


def slash_command(
    slack: FakeSlack, text: str, *, channel: str = "C0001", user: str = "U0001"
) -> dict[str, str]:
    return {
        "token": "legacy-verification-token",
        "team_id": slack.team_id,
        "team_domain": slack.team_domain,
        "channel_id": channel,
        "channel_name": "general",
        "user_id": user,
        "user_name": "alice",
        "command": "/engage",
        "text": text,
        "api_app_id": "A0001",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.invalid/commands/1",
        "trigger_id": f"{next(_event_ids)}.{uuid.uuid4().hex[:8]}",
    }


def block_action(
    slack: FakeSlack, message: dict[str, Any], action_id: str, *, user: str = "U0001"
) -> dict[str, Any]:
    """A click on a button of `message` (a bot post with an actions block), as Slack sends it."""
    [button] = [
        e
        for b in message.get("blocks", [])
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    ]
    channel = message.get("channel") or next(
        ch for ch, posted in slack.messages.items() if message in posted
    )
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "team_id": slack.team_id},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
            "thread_ts": message.get("thread_ts"),
        },
        "trigger_id": f"{next(_event_ids)}.{uuid.uuid4().hex[:8]}",
        "team": {"id": slack.team_id, "domain": slack.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"},
        "message": message,
        "response_url": "https://hooks.invalid/actions/1",
        "actions": [
            {
                **button,
                "block_id": "engage_feedback",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def view_submission(
    slack: FakeSlack, view: dict[str, Any], values: dict[str, Any], *, user: str = "U0001"
) -> dict[str, Any]:
    """Submitting an opened modal; `values` maps block_id -> action_id -> typed value."""
    state = {
        block: {action: {"type": "plain_text_input", "value": value}}
        for block, inputs in values.items()
        for action, value in inputs.items()
    }
    return {
        "type": "view_submission",
        "team": {"id": slack.team_id, "domain": slack.team_domain},
        "user": {"id": user, "username": "alice", "team_id": slack.team_id},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": f"{next(_event_ids)}.{uuid.uuid4().hex[:8]}",
        "view": {**view, "state": {"values": state}, "hash": uuid.uuid4().hex},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def reaction(
    slack: FakeSlack,
    channel: str,
    ts: str,
    name: str,
    *,
    user: str = "U0001",
    added: bool = True,
) -> dict[str, Any]:
    """A `reaction_added`/`reaction_removed` event on a message."""
    return {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": name,
        "item_user": slack.bot_user_id,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": slack.next_ts(),
    }


@dataclass
class Delivery:
    status: int
    body: str
    seconds: float


class EventSender:
    """POSTs Slack-signed requests to the bridge, as Slack's Events API delivery does."""

    def __init__(self, url: str, signing_secret: str) -> None:
        self.url = url
        self.secret = signing_secret
        self.client = httpx.AsyncClient(timeout=30.0)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(
        self,
        body: dict[str, Any],
        *,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: float | None = None,
        secret: str | None = None,
    ) -> Delivery:
        raw = json.dumps(body).encode()
        return await self._post(raw, "application/json", retry_num, retry_reason, timestamp, secret)

    async def send_interaction(self, payload: dict[str, Any]) -> Delivery:
        """Block actions and view submissions: a form with one JSON `payload` field."""
        raw = urlencode({"payload": json.dumps(payload)}).encode()
        return await self._post(raw, "application/x-www-form-urlencoded", None, "", None, None)

    async def send_command(self, form: dict[str, str]) -> Delivery:
        raw = urlencode(form).encode()
        return await self._post(raw, "application/x-www-form-urlencoded", None, "", None, None)

    async def _post(
        self,
        raw: bytes,
        content_type: str,
        retry_num: int | None,
        retry_reason: str,
        timestamp: float | None,
        secret: str | None,
    ) -> Delivery:
        stamp = str(int(timestamp if timestamp is not None else time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(secret or self.secret, stamp, raw),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        started = time.monotonic()
        response = await self.client.post(self.url, content=raw, headers=headers)
        return Delivery(response.status_code, response.text, time.monotonic() - started)
