"""A faithful local Slack: the Web API methods the adapter uses, limits, 429s, Socket Mode."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serve
from tests.fakes.slack_assistant import Assistant
from tests.fakes.slack_channels import ChannelError, Channels
from tests.fakes.slack_files import Files
from tests.fakes.slack_oauth import OAuthError, Workspace, Workspaces
from tests.fakes.slack_socket import Connection, Envelope, SocketMode

__all__ = ["Call", "Connection", "Envelope", "FakeSlack", "SlackApiFailure", "Workspace"]

TEXT_LIMIT = 40_000
MARKDOWN_TEXT_LIMIT = 12_000
SECTION_TEXT_LIMIT = 3_000
BLOCKS_LIMIT = 50
MARKDOWN_BLOCKS_LIMIT = 12_000  # cumulative over a message's `markdown` blocks
BUTTON_VALUE_LIMIT = 2_000


@dataclass
class Call:
    """One Web API call as the fake saw it."""

    method: str
    token: str | None
    args: dict[str, Any]
    response: dict[str, Any]
    status: int


class SlackApiFailure(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class FakeSlack:
    """Slack's Web API and Socket Mode on an ephemeral loopback port; records every call."""

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        team_domain: str = "acme",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        bot_token: str = "xoxb-fake-bot-token",  # noqa: S107
        app_token: str = "xapp-fake-app-token",  # noqa: S107
        signing_secret: str = "fake-signing-secret",  # noqa: S107
        client_id: str = "1111.2222",
        client_secret: str = "fake-client-secret",  # noqa: S107
    ) -> None:
        self.team_id, self.team_domain = team_id, team_domain
        self.bot_user_id, self.bot_id = bot_user_id, bot_id
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.calls: list[Call] = []
        self.home = Workspace(team_id, team_domain, bot_user_id, bot_id)
        self.workspaces = Workspaces(self.home, bot_token, client_id, client_secret)
        self._caller = self.home
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.reactions: dict[tuple[str, str], set[str]] = {}
        self.statuses: list[tuple[str, str, str]] = []  # every setStatus call
        self.shown_status: dict[tuple[str, str], str] = {}  # (channel, thread_ts) -> on screen
        self.web_api_peers: set[Any] = set()  # client (host, port) of each Web API connection
        self.views: list[dict[str, Any]] = []
        self._used_triggers: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.missing_channels: set[str] = set()
        self.channels = Channels()
        self.assistant = Assistant()
        self.files = Files(
            lambda: f"http://127.0.0.1:{self.port}/",
            lambda token: self.workspaces.by_token(token) is not None,
        )
        self.rate_limit_per_channel = False
        self.set_status_error: str | None = None
        self.markdown_refusal: str | None = None  # see refuse_markdown
        self._forced_failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._garbled: dict[str, int] = {}
        self.held: dict[str, int] = {}  # calls of a held method waiting for their answer now
        self._last_post: dict[str, float] = {}
        self._ts_counter = itertools.count(1)
        self._ts_base = int(time.time())
        self.socket_mode = SocketMode(
            lambda ticket: f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}"
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self.socket_mode.handle)
        app.router.add_get("/files-pri/{file_id}/{name}", self.files.handle)
        self._runner, self.port = await serve(app, handle_signals=False)

    async def aclose(self) -> None:
        await self.socket_mode.aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- test controls

    def next_ts(self) -> str:
        return f"{self._ts_base}.{next(self._ts_counter):06d}"

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        error: str = "ratelimited",
        retry_after: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail (429s carry an integer Retry-After)."""
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        queue = self._forced_failures.setdefault(method, [])
        queue.extend((status, {"ok": False, "error": error}, headers) for _ in range(times))

    def garble_next(self, method: str, times: int = 1) -> None:
        """Handle the next `times` calls of `method` as usual, then answer them as a gateway in
        front of Slack can: a 502 whose JSON content type carries an HTML page."""
        self._garbled[method] = self._garbled.get(method, 0) + times

    def hold(self, method: str) -> asyncio.Event:
        """Keep every call of `method` waiting for its answer until the returned event is set
        (they are counted in `held` meanwhile)."""
        gate = self._holds[method] = asyncio.Event()
        return gate

    def forced_failures_left(self, method: str) -> int:
        return len(self._forced_failures.get(method, ()))

    def refuse_markdown(self, error: str = "no_text") -> None:
        """Act as a Slack that does not take standard Markdown: `markdown_text` is answered with
        `error`, a `markdown` block with `invalid_blocks`; mrkdwn `text` still posts.

        Slack's docs list no error for this case. Slack ignores arguments it does not know, so a
        server without `markdown_text` sees a message with no content: `no_text` (the default)
        is that inference; `invalid_arguments` (stricter argument checks) is the other
        plausible answer. Neither is confirmed against a real workspace.
        """
        self.markdown_refusal = error

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.response.get("ok")]

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted, oldest first."""
        channels = [channel] if channel else list(self.messages)
        found = [m for ch in channels for m in self.messages.get(ch, []) if m.get("bot_id")]
        return sorted(found, key=lambda m: float(m["ts"]))

    def add_user_message(self, channel: str, message: dict[str, Any]) -> None:
        """Record a user's message, as Slack would before sending its event."""
        self.messages.setdefault(channel, []).append(message)

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.02)

    # ---- Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.transport is not None:
            self.web_api_peers.add(request.transport.get_extra_info("peername"))
        args = await _read_args(request)
        gate = self._holds.get(method)
        if gate is not None and not gate.is_set():
            self.held[method] = self.held.get(method, 0) + 1
            try:
                await gate.wait()
            finally:
                self.held[method] -= 1
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        status, body, headers = 200, dict[str, Any](), dict[str, str]()
        forced = self._forced_failures.get(method)
        if forced:
            status, body, headers = forced.pop(0)
        elif method == "apps.connections.open":
            body = self._connections_open(token)
        elif method == "oauth.v2.access":
            try:
                body = {"ok": True, **self.workspaces.exchange(args, auth)}
            except OAuthError as exc:
                body = {"ok": False, "error": exc.error}
        elif (caller := self.workspaces.by_token(token)) is None:
            body = {"ok": False, "error": "not_authed" if not token else "invalid_auth"}
        elif method == "chat.postMessage" and self._rate_limited(args.get("channel")):
            status, body = 429, {"ok": False, "error": "ratelimited"}
            headers = {"Retry-After": "1"}
        else:
            self._caller = caller
            handler = _HANDLERS.get(method)
            if handler is None:
                body = {"ok": False, "error": "unknown_method"}
            else:
                try:
                    body = {"ok": True, **handler(self, args)}
                except (SlackApiFailure, ChannelError) as exc:
                    body = {"ok": False, "error": exc.error}
        self.calls.append(Call(method, token, args, body, status))
        if self._garbled.get(method):
            self._garbled[method] -= 1
            page = b"<html><body>502 Bad Gateway</body></html>"
            return web.Response(status=502, body=page, content_type="application/json")
        return web.json_response(body, status=status, headers=headers)

    def _rate_limited(self, channel: Any) -> bool:
        if not self.rate_limit_per_channel or not isinstance(channel, str):
            return False
        now = time.monotonic()
        if now - self._last_post.get(channel, -10.0) < 1.0:
            return True
        self._last_post[channel] = now
        return False

    def _channel(self, args: dict[str, Any], name: str = "channel") -> str:
        channel = args.get(name)
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if channel in self.missing_channels:
            raise SlackApiFailure("channel_not_found")
        return str(channel)

    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        for message in self.messages.get(channel, []):
            if message["ts"] == ts:
                return message
        raise SlackApiFailure("message_not_found")

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._caller.auth_test()

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        message = self._message_content(args)
        ts = self.next_ts()
        bot = self._caller
        message.update(type="message", ts=ts, user=bot.bot_user_id, bot_id=bot.bot_id)
        message["team"] = self.team_id if bot.org_wide else bot.team_id
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
            # "A two minute timeout applies, which will cause the status to be removed if no
            # message has been sent" (assistant.threads.setStatus): the app's reply removes it.
            self.shown_status.pop((channel, message["thread_ts"]), None)
        if args.get("metadata"):
            message["metadata"] = _as_dict(args["metadata"])
        self.messages.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": ts, "message": message}

    def _message_content(self, args: dict[str, Any]) -> dict[str, Any]:
        text, blocks, markdown = args.get("text"), args.get("blocks"), args.get("markdown_text")
        if markdown is not None and self.markdown_refusal:
            raise SlackApiFailure(self.markdown_refusal)
        if self.markdown_refusal and blocks and _has_markdown_block(blocks):
            raise SlackApiFailure("invalid_blocks")
        if markdown is not None:
            if text or blocks:
                raise SlackApiFailure("markdown_text_conflict")
            if len(markdown) > MARKDOWN_TEXT_LIMIT:
                raise SlackApiFailure("msg_too_long")
            return {"markdown_text": markdown, "text": markdown}
        if not text and not blocks:
            raise SlackApiFailure("no_text")
        content: dict[str, Any] = {"text": (text or "")[:TEXT_LIMIT]}
        if blocks:
            content["blocks"] = _checked_blocks(blocks)
        return content

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        message = self._find(channel, str(args.get("ts")))
        for key in ("text", "blocks", "markdown_text"):
            message.pop(key, None)
        message.update(self._message_content(args))
        return {"channel": channel, "ts": message["ts"], "text": message.get("text", "")}

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        message = self._find(channel, str(args.get("ts")))
        self.messages[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("message_ts"))
        message = self._find(channel, ts)
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if message.get("thread_ts") and message["thread_ts"] != ts:
            link += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _reaction(self, args: dict[str, Any], *, add: bool) -> dict[str, Any]:
        channel = self._channel(args)
        ts, name = str(args.get("timestamp")), str(args.get("name"))
        names = self.reactions.setdefault((channel, ts), set())
        if add and name in names:
            raise SlackApiFailure("already_reacted")
        if not add and name not in names:
            raise SlackApiFailure("no_reaction")
        (names.add if add else names.discard)(name)
        return {}

    def _set_status(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.set_status_error:
            raise SlackApiFailure(self.set_status_error)
        channel = self._channel(args, "channel_id")
        thread_ts, status = str(args.get("thread_ts")), str(args.get("status", ""))
        self.statuses.append((channel, thread_ts, status))
        if status:
            self.shown_status[(channel, thread_ts)] = status
        else:
            self.shown_status.pop((channel, thread_ts), None)
        return {}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = str(args.get("trigger_id") or "")
        view = _as_dict(args.get("view"))
        if not trigger or not isinstance(view, dict):
            raise SlackApiFailure("invalid_arguments")
        if trigger in self._used_triggers:
            raise SlackApiFailure("exchanged_trigger_id")
        if view.get("type") != "modal" or not view.get("title"):
            raise SlackApiFailure("invalid_arguments")
        self._used_triggers.add(trigger)
        opened = {**view, "id": f"V{next(self._ts_counter):08d}", "team_id": self.team_id}
        opened["blocks"] = _checked_blocks(view.get("blocks", []))
        self.views.append(opened)
        return {"view": opened}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("ts"))
        thread = [
            m for m in self.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts
        ]
        if not thread:
            raise SlackApiFailure("thread_not_found")
        thread.sort(key=lambda m: float(m["ts"]))
        include_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [m if include_metadata else _without(m, "metadata") for m in thread]
        return {"messages": shown, "has_more": False}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"user": user}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        users = self.usergroups.get(str(args.get("usergroup")))
        if users is None:
            raise SlackApiFailure("no_such_subteam")
        return {"users": users}

    def _connections_open(self, token: str | None) -> dict[str, Any]:
        if token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_mode.open_url()}

    # ---- Socket Mode (tests/fakes/slack_socket.py)

    @property
    def envelopes(self) -> dict[str, Envelope]:
        return self.socket_mode.envelopes

    @property
    def connections(self) -> list[Connection]:
        return self.socket_mode.live()

    @property
    def connections_opened(self) -> int:
        return self.socket_mode.connections_opened

    @property
    def socket_connected(self) -> asyncio.Event:
        return self.socket_mode.connected

    async def push(
        self, payload: dict[str, Any], kind: str = "events_api", to: Connection | None = None
    ) -> Envelope:
        """Send one envelope to one live connection (kept until a client connects)."""
        return await self.socket_mode.push(payload, kind, to)

    async def push_many(self, payloads: list[dict[str, Any]]) -> list[Envelope]:
        """Send envelopes back to back, as one burst (no awaiting between frames' acks)."""
        return [await self.push(p) for p in payloads]

    async def disconnect(
        self, reason: str = "refresh_requested", connection: Connection | None = None
    ) -> None:
        """Slack's `disconnect` message; waits until the app has opened a new connection."""
        await self.socket_mode.disconnect(reason, connection)

    async def redeliver_unacked(self) -> list[Envelope]:
        return await self.socket_mode.redeliver_unacked()

    def unacked(self) -> list[Envelope]:
        return self.socket_mode.unacked()


def _without(message: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != key}


def _as_dict(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _has_markdown_block(raw: Any) -> bool:
    blocks = _as_dict(raw)
    return isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "markdown" for b in blocks
    )


def _checked_blocks(raw: Any) -> list[dict[str, Any]]:
    blocks = _as_dict(raw)
    if not isinstance(blocks, list) or len(blocks) > BLOCKS_LIMIT:
        raise SlackApiFailure("invalid_blocks")
    markdown = 0
    for block in blocks:
        text = block.get("text") if isinstance(block, dict) else None
        too_long = isinstance(text, dict) and len(text.get("text", "")) > SECTION_TEXT_LIMIT
        if block.get("type") == "section" and too_long:
            raise SlackApiFailure("invalid_blocks")
        if block.get("type") == "markdown":
            markdown += len(text) if isinstance(text, str) else MARKDOWN_BLOCKS_LIMIT + 1
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if len(str(element.get("value", ""))) > BUTTON_VALUE_LIMIT:
                raise SlackApiFailure("invalid_blocks")
    if markdown > MARKDOWN_BLOCKS_LIMIT:
        raise SlackApiFailure("invalid_blocks")
    return blocks


async def _read_args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            args.update(body)
    elif request.can_read_body:
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


_HANDLERS: dict[str, Any] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.delete": FakeSlack._delete,
    "chat.getPermalink": FakeSlack._permalink,
    "reactions.add": lambda fake, args: fake._reaction(args, add=True),
    "reactions.remove": lambda fake, args: fake._reaction(args, add=False),
    "assistant.threads.setStatus": FakeSlack._set_status,
    "assistant.threads.setSuggestedPrompts": lambda fake, args: fake.assistant.set_prompts(args),
    "assistant.threads.setTitle": lambda fake, args: fake.assistant.set_title(args),
    "conversations.replies": FakeSlack._replies,
    "views.open": FakeSlack._views_open,
    "users.info": FakeSlack._users_info,
    "usergroups.users.list": FakeSlack._usergroup_users,
    "conversations.info": lambda fake, args: fake.channels.info(args),
    "conversations.members": lambda fake, args: fake.channels.members(args),
    "chat.postEphemeral": lambda fake, args: fake.channels.ephemeral(args),
}
