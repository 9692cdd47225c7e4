"""The Slack adapter: a Bolt `AsyncApp` that stores each event before Slack is acknowledged."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.slack import access, events, revisions, startup
from adapters.slack.assistant import AssistantThreads
from adapters.slack.clients import Clients, close_session, open_session
from adapters.slack.events import BotIdentity, SlashCommand
from adapters.slack.feedback import SlackFeedback
from adapters.slack.files import FileLimits, FileReader
from adapters.slack.format import neutralise_pings
from adapters.slack.ingress import SlackIngress, on_error
from adapters.slack.oauth import (
    INSTALL_PATH,
    REDIRECT_PATH,
    bolt_app,
    identity_of,
    knows_its_bot,
    redirect_uri_of,
    team_middleware,
)
from adapters.slack.outbound import SlackSender, build_client
from adapters.slack.settings import SlackOAuthSettings, SlackSettings
from bridge.adapter import Inbox
from bridge.chat import WORKING_STATUS
from bridge.config import Settings
from bridge.edits import Revisions
from bridge.errors import ConfigError, StorageUnavailable
from bridge.feedback import Answers
from bridge.models import InboundMessage, Reply, SubmitResult, ThreadKey
from bridge.outbound import send_retry
from bridge.redisconn import writers_at_once
from bridge.threadmap import ThreadMap

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/engage"
USAGE = (
    "Usage: `/engage ask <question>`, or `/engage <reset|agent NAME|status|handoff|resume|"
    "resolve> <thread link>` (or type the command in the thread, mentioning me)."
)

Ack = Callable[..., Awaitable[None]]


class SlackAdapter:
    """HTTP Events API (on the bridge's server) and/or Socket Mode, plus send and status.

    Bolt normally acknowledges before a listener runs; with `process_before_response=True` the
    listener runs first, so the 200 (HTTP) or envelope ack (Socket Mode) goes out only after
    `inbox.submit` stored the message. If storing fails the listener raises: the route answers
    503 (Slack redelivers) or the envelope stays unacknowledged (Slack redelivers it). Over HTTP
    the ingress guard checks size and signature before Bolt sees a byte (adapters/slack/ingress).
    """

    name = "slack"
    # The accept sign (assistant status) lasts until the answer is posted or Slack's 2-minute
    # timeout: a turn starting within a minute of it need not set the same status again (under
    # a burst, turns start seconds after their sign: 1.8 setStatus calls per turn before).
    sign_seconds = 60.0

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        client: AsyncWebClient | None = None,
        options: SlackSettings | None = None,
        oauth: SlackOAuthSettings | None = None,
    ) -> None:
        self._options = options or settings.platform(SlackSettings)
        self._oauth = oauth if oauth is not None and oauth.enabled else None
        token = self._options.bot_token
        if token is not None and self._oauth is not None:
            raise ConfigError(
                "Slack: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET (installs into many workspaces), not both"
            )
        if token is None and self._oauth is None:
            raise ConfigError("Slack needs SLACK_BOT_TOKEN, or SLACK_CLIENT_ID/SLACK_CLIENT_SECRET")
        if self._options.signing_secret is None and self._options.app_token is None:
            raise ConfigError(
                "Slack needs SLACK_SIGNING_SECRET (HTTP Events API) "
                "or SLACK_APP_TOKEN (Socket Mode)"
            )
        self._settings = settings
        self._owns_client = client is None
        self._client = client or build_client(
            token.get_secret_value() if token else None, self._options.api_url
        )
        self._redis = redis
        self._redirect_uri = redirect_uri_of(self._oauth, settings.public_url)
        signing = self._options.signing_secret
        self._app, store, self._authorize = bolt_app(
            signing, self._client, self._oauth, self._redirect_uri, redis
        )
        self._refused_tokens: set[str] = set()  # single-team mode: said once
        self._clients = Clients(self._client, store, refused=self._token_refused)
        answers = Answers(redis)
        self._sender = SlackSender(
            self._clients,
            redis,
            max_parts=settings.max_reply_parts,
            user_mentions=self._options.user_mentions,
            retry=send_retry(settings),
        )
        self._feedback = SlackFeedback(redis, answers, self._clients)
        self._threads = ThreadMap(redis, idle_ttl_seconds=settings.thread_idle_ttl_seconds)
        follow_up = settings.file.policy.edits_after_answer == "follow_up"
        self._revisions = Revisions(redis, follow_up_edits=follow_up)
        self._files = FileReader(FileLimits(max_bytes=self._options.file_max_bytes))
        self._assistant = AssistantThreads(
            self._threads, settings.file.routing, self._options.suggested_prompts, self._clients
        )
        self._inbox: Inbox | None = None
        self._identity: BotIdentity | None = None
        self._staff = frozenset(settings.file.staff.slack_user_ids)
        self._socket: AsyncSocketModeHandler | None = None
        # Socket Mode runs every envelope of a burst at once; the bound keeps its submits within
        # what the Redis client takes (bridge.redisconn) and caps how fast an HTTP burst is stored.
        self._submit_slots = asyncio.Semaphore(writers_at_once(redis))
        self._app.error(on_error)
        if store is not None:
            self._app.use(team_middleware(store))
            # app_uninstalled / tokens_revoked delete the installation (before the catch-all).
            self._app.enable_token_revocation_listeners()
        self._register_listeners()

    # ---- lifecycle

    async def start(self) -> None:
        """Learn who the bot is (`auth.test`) and which users count as staff."""
        if self._owns_client and self._client.session is None:
            open_session(self._client)
        try:
            app_token = self._options.app_token
            if self._oauth is not None:
                await startup.check_oauth(self._client, self._oauth, self._redirect_uri)
            else:
                self._identity, auth = await startup.identify(self._client)
                knows_its_bot(self._app, auth)
                groups = self._settings.file.staff.slack_usergroup_ids
                self._staff = self._staff | await startup.usergroup_members(self._client, groups)
            await startup.check_app_token(self._client, app_token)
        except BaseException:
            await self.aclose()
            raise
        self._assistant.start()

    async def run(self, inbox: Inbox) -> None:
        """Socket Mode when an app token is set; otherwise events arrive over HTTP routes."""
        self._inbox = inbox
        self._feedback.attach(inbox)
        self._assistant.attach(inbox)
        token = self._options.app_token
        if token is None:
            await asyncio.Event().wait()
            return
        socket = AsyncSocketModeHandler(
            self._app, token.get_secret_value(), web_client=self._client
        )
        self._socket = socket
        try:
            await socket.connect_async()  # type: ignore[no-untyped-call]
            await asyncio.Event().wait()
        finally:
            self._socket = None
            await socket.close_async()  # type: ignore[no-untyped-call]

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        self._inbox = inbox
        self._feedback.attach(inbox)
        self._assistant.attach(inbox)
        routes: list[BaseRoute] = []
        secret = self._options.signing_secret
        if secret is not None:
            # OAuth mode looks the workspace's installation up per event: Bolt does that.
            plain = self._on_plain_message if self._oauth is None else None
            ingress = SlackIngress(self._app, secret.get_secret_value(), plain)
            routes.append(ingress.route(EVENTS_PATH))
        if self._oauth is not None:
            # Browser GETs without a body: the app-wide ingress guard's limits apply; Bolt checks
            # the OAuth state (Redis, single use) and its cookie.
            pages = AsyncSlackRequestHandler(self._app)

            async def oauth_page(request: Request) -> Response:
                return await pages.handle(request)

            routes += [Route(p, oauth_page, methods=["GET"]) for p in (INSTALL_PATH, REDIRECT_PATH)]
        return routes

    async def aclose(self) -> None:
        await self._assistant.close()
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._owns_client:
            await close_session(self._client)

    # ---- outbound

    def _token_refused(self, team: str, token: str, error: str) -> None:
        """Slack refused a bot token on a call: revoked or uninstalled without the bridge
        hearing of it (no tokens_revoked / app_uninstalled event). OAuth mode forgets the
        workspace's cached authorization, so its next event asks `auth.test` again and is
        refused (Bolt's answer for a workspace without a usable installation)."""
        if self._authorize is not None:
            if self._authorize.forget(token):
                log.warning(
                    "slack refused the bot token of workspace %s (%s): its events are refused "
                    "until the app is installed there again",
                    team, error, extra={"workspace": team},
                )  # fmt: skip
        elif token not in self._refused_tokens:
            self._refused_tokens.add(token)
            log.error(
                "slack refused SLACK_BOT_TOKEN (%s): nothing can be posted until it is replaced",
                error, extra={"workspace": team},
            )  # fmt: skip

    async def send(self, reply: Reply) -> str:
        return await self._sender.send(reply)

    async def post_once(self, reply: Reply) -> tuple[str, bool]:
        return await self._sender.post_once(reply)

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        await self._sender.set_status(thread, status)

    def post_clears_status(self, thread: ThreadKey) -> bool:
        return self._sender.post_clears_status(thread)

    async def show_accepted(self, thread: ThreadKey) -> None:
        """The status line at once, from the process that acked (no state to clear here)."""
        await self._sender.set_status(thread, WORKING_STATUS)

    # ---- inbound

    def _register_listeners(self) -> None:
        # Bolt tries listeners in this order (each try builds its arguments): plain messages
        # come more often than mentions.
        self._app.event("message")(self._on_message)
        self._app.event("app_mention")(self._on_message)
        self._feedback.register(self._app)
        self._app.event("assistant_thread_started")(self._assistant.on_started)
        self._app.event("assistant_thread_context_changed")(self._assistant.on_context_changed)
        # Every other subscribed type is acknowledged: Bolt would answer 404 and Slack retry.
        self._app.event(re.compile(".*"))(self._on_other_event)
        self._app.command(COMMAND)(self._on_command)

    async def _bot(self) -> BotIdentity:
        if self._identity is None:
            await self.start()
        assert self._identity is not None
        return self._identity

    async def _submit(self, message: InboundMessage) -> SubmitResult:
        if self._inbox is None:
            raise StorageUnavailable("slack adapter is not connected to the bridge yet")
        async with self._submit_slots:
            return await self._inbox.submit(message)

    def _staff_in(self, team: str) -> frozenset[str]:
        """Staff everywhere plus the staff listed for this workspace."""
        local = self._settings.file.staff.slack_workspace_user_ids.get(team)
        return self._staff | frozenset(local) if local else self._staff

    async def _bot_for(self, context: AsyncBoltContext, body: dict[str, Any]) -> BotIdentity:
        """The bot as this workspace knows it: per installation in OAuth mode."""
        return identity_of(context, body) if self._oauth is not None else await self._bot()

    async def _on_message(
        self, body: dict[str, Any], ack: Ack, context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        if (body.get("event") or {}).get("subtype") in revisions.SUBTYPES:
            await self._revise(body, await self._bot_for(context, body))
            await ack()
            return
        await self._take_message(body, await self._bot_for(context, body), client.token)
        await ack()

    async def _on_plain_message(self, body: dict[str, Any]) -> BoltResponse | None:
        """`_on_message` for a plain message body over HTTP with one bot token, without Bolt's
        dispatch (`SlackIngress`): Bolt's self-event check is `to_event`'s. None: acked; else
        `on_error`'s answer for a failure, as Bolt's."""
        try:
            await self._take_message(body, await self._bot(), self._client.token)
        except Exception as error:
            return await on_error(error)
        return None

    async def _take_message(
        self, body: dict[str, Any], bot: BotIdentity, token: str | None
    ) -> None:
        message = events.to_event(
            body, bot, self._staff_in(str(body.get("team_id") or bot.team_id))
        )
        if message is not None and message.attachments and await self._for_the_bot(message):
            session = self._client.session
            message = await self._files.with_files(message, session, token)
        if message is not None:
            result = await self._submit(message)
            log.debug(
                "slack event handed over: %s",
                result.reason,
                extra={"thread_key": str(message.thread), "event_id": body.get("event_id")},
            )

    async def _revise(self, body: dict[str, Any], bot: BotIdentity) -> None:
        """An edit or a delete (bridge.edits decides); raises if it could not be stored."""
        if self._inbox is None:
            raise StorageUnavailable("slack adapter is not connected to the bridge yet")
        change = revisions.edited(body, bot, self._staff_in(bot.team_id))
        if change is not None:
            await self._revisions.edited(self._inbox, *change)
            return
        gone = revisions.deleted(body, bot)
        if gone is not None:
            await self._revisions.deleted(self._inbox, gone.thread, gone.message_id,
                                          user_id=gone.user_id, is_dm=gone.is_dm)  # fmt: skip

    async def _for_the_bot(self, message: InboundMessage) -> bool:
        """Whether the bot may answer it: files in other people's chatter are not downloaded."""
        if message.is_dm or message.mentions_bot:
            return True
        if message.thread.channel in self._settings.file.policy.auto_reply_channels:
            return True
        return self._inbox is not None and await self._inbox.is_known_thread(message.thread)

    async def _on_other_event(self, ack: Ack) -> None:
        await ack()

    async def _on_command(self, body: dict[str, Any], ack: Ack, context: AsyncBoltContext) -> None:
        command = events.parse_slash_command(body)
        if command is None:
            await ack(text=USAGE)
            return
        try:
            if not await access.first_delivery(self._redis, body):
                await ack(text=f"`{command.name}` was already received.")
                return
            client = await self._clients.for_team(str(body.get("team_id")))
            thread = await self._command_thread(body, command, client)
            staff = self._staff_in(thread.workspace)
            refusal = await access.refusal(client, self._threads, staff, body, command.name, thread)
            if refusal:
                await ack(text=refusal)
                return
            bot = await self._bot_for(context, body)
            await self._submit(events.command_to_event(body, command, thread, bot, staff))
        except StorageUnavailable:
            # Slack never redelivers a slash command: tell the person instead of failing quietly.
            await ack(text="Sorry, I could not take that command just now; please try again.")
            return
        await ack(text=f"`{command.name}` received; the answer comes in the thread.")

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None:
        await access.tell(await self._clients.for_team(thread.workspace), thread, user_id, text)

    async def _command_thread(
        self, body: dict[str, Any], command: SlashCommand, client: AsyncWebClient
    ) -> ThreadKey:
        if command.thread is not None:
            return command.thread
        # `ask`: the question becomes the thread's root, posted for the person who asked.
        channel = str(body.get("channel_id"))
        question = neutralise_pings(command.argument)
        response = await client.chat_postMessage(
            channel=channel, text=f"<@{body.get('user_id')}> asked: {question}"
        )
        return ThreadKey(events.PLATFORM, str(body.get("team_id")), channel, str(response["ts"]))


def create_adapter(settings: Settings, redis: aioredis.Redis) -> SlackAdapter:
    return SlackAdapter(settings, redis, oauth=settings.platform(SlackSettings).oauth)
