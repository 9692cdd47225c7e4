"""The web adapter: a local playground to chat with agents, and an operator view of threads."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

from starlette.routing import BaseRoute, Route

from adapters.web.access import Access, Policy, ProxyAuth, startup_problem
from adapters.web.agents import AgentCatalog, AgentsApi
from adapters.web.gate import Endpoint, Gate
from adapters.web.login import MAX_FORM_BYTES, Login
from adapters.web.operator import (
    ConversationHistory,
    HasEngage,
    OperatorViews,
    ThreadDirectory,
)
from adapters.web.playground import (
    CHANNEL,
    SOURCE,
    WORKSPACE,
    Limits,
    PlaygroundApi,
    ThreadRecords,
)
from adapters.web.ratelimit import RateLimiter
from adapters.web.session import Sessions
from adapters.web.settings import MIN_TOKEN_CHARS, WebSettings
from adapters.web.static import favicon, playground_page, serve_static
from adapters.web.store import Entry, TranscriptStore
from bridge.adapter import Inbox
from bridge.config import Settings
from bridge.errors import ConfigError, PlatformError, StorageUnavailable
from bridge.guard import guarded
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.store import RedisClient
from bridge.threadmap import ThreadMap

JSON = frozenset({"application/json"})
FORM = frozenset({"application/x-www-form-urlencoded"})
# 8,000 characters, JSON-escaped at worst 12 bytes each (an astral character as two \u escapes).
API_BODY_LIMIT = 128 * 1024
PLAYGROUND_PATH = "/playground"
OPERATOR_PATH = "/operator"


class WebAdapter:
    """Replies and status lines go to Redis; the page polls them from any bridge process."""

    name = SOURCE

    def __init__(
        self,
        store: TranscriptStore,
        threads: ThreadDirectory,
        gate: Gate,
        history: ConversationHistory | None = None,
        limits: Limits | None = None,
        default_agent: str = "",
    ) -> None:
        self.store = store
        self._threads = threads
        self._gate = gate
        self._history = history
        self._limits = limits or Limits()
        self._default_agent = default_agent

    async def start(self) -> None:
        return None

    async def run(self, inbox: Inbox) -> None:
        # Browsers talk to `routes`; there is nothing to listen to here.
        await asyncio.Event().wait()

    def routes(self, inbox: Inbox) -> Sequence[BaseRoute]:
        records: ThreadRecords = self._threads
        gate, sessions = self._gate, self._gate.sessions
        limiter = RateLimiter(self.store.redis)
        api = PlaygroundApi(inbox, self.store, records, sessions, limiter, self._limits)
        history = self._history or (inbox.engage if isinstance(inbox, HasEngage) else None)
        views = OperatorViews(self._threads, history)
        catalog = history if isinstance(history, AgentCatalog) else None
        agents = AgentsApi(catalog, self._default_agent)
        login = Login(sessions, limiter)
        chat, staff = Access.VISITOR, Access.STAFF

        def post(endpoint: Endpoint, need: Access) -> Endpoint:
            # Who asks is checked first (cookie, Host, Origin), then the guard caps and reads.
            body = guarded(endpoint, limit=API_BODY_LIMIT, media_types=JSON)
            return gate.guard(body, need, api=True)

        base = f"{PLAYGROUND_PATH}/api/threads"
        login_form = guarded(login.submit, limit=MAX_FORM_BYTES, media_types=FORM)
        return [
            Route(PLAYGROUND_PATH, gate.guard(playground_page, chat), methods=["GET"]),
            Route(f"{PLAYGROUND_PATH}/api/agents", gate.guard(agents.list, chat, api=True)),
            Route(base, post(api.create, chat), methods=["POST"]),
            Route(f"{base}/{{thread_id}}", gate.guard(api.poll, chat, api=True), methods=["GET"]),
            Route(f"{base}/{{thread_id}}/messages", post(api.post_message, chat), methods=["POST"]),
            Route(
                f"{base}/{{thread_id}}/commands", post(api.post_command, staff), methods=["POST"]
            ),
            Route(OPERATOR_PATH, gate.guard(views.list_threads, staff), methods=["GET"]),
            Route(
                f"{OPERATOR_PATH}/threads/{{thread_key}}",
                gate.guard(views.show_thread, staff),
                methods=["GET"],
            ),
            Route("/web/login", gate.guard(login.show), methods=["GET"]),
            Route("/web/login", gate.guard(login_form), methods=["POST"]),
            Route("/web/logout", gate.guard(guarded(login.sign_out, limit=0)), methods=["POST"]),
            Route("/web/static/{name}", gate.guard(serve_static), methods=["GET"]),
            Route("/favicon.ico", gate.guard(favicon), methods=["GET"]),
        ]

    async def send(self, reply: Reply) -> str:
        role = "notice" if reply.kind is ReplyKind.NOTICE else "agent"
        entry = Entry(role=role, text=reply.text, name=reply.agent)
        try:
            position = await self.store.append(reply.thread, reply.idempotency_key, entry)
        except StorageUnavailable as exc:
            raise PlatformError(f"web transcript not written: {exc}") from exc
        return f"web-{position}"

    async def tell(self, thread: ThreadKey, user_id: str, text: str) -> None:
        """A refused command's reason, as a local line of the visitor's own transcript."""
        entry = Entry(role="local", text=text)
        try:
            await self.store.append(thread, f"refusal:{secrets.token_hex(8)}", entry)
        except StorageUnavailable as exc:
            raise PlatformError(f"web transcript not written: {exc}") from exc

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        try:
            await self.store.set_status(thread, status)
        except StorageUnavailable as exc:
            raise PlatformError(f"web status not written: {exc}") from exc

    async def aclose(self) -> None:
        return None


def proxy_auth(web: WebSettings) -> ProxyAuth | None:
    if web.proxy_user_header is None:
        return None
    secret = web.proxy_secret.get_secret_value() if web.proxy_secret is not None else ""
    if len(secret) < MIN_TOKEN_CHARS:
        raise ConfigError(
            "ENGAGE_BRIDGE_WEB_PROXY_USER_HEADER needs ENGAGE_BRIDGE_WEB_PROXY_SECRET "
            f"(at least {MIN_TOKEN_CHARS} characters), which the proxy sends in "
            "X-Engage-Bridge-Proxy-Secret"
        )
    return ProxyAuth(web.proxy_user_header, secret, frozenset(web.staff_users))


def create_adapter(
    settings: Settings, redis: RedisClient, web: WebSettings | None = None
) -> WebAdapter:
    web = web if web is not None else settings.platform(WebSettings)
    token = web.token
    proxy = proxy_auth(web)
    if token is not None and len(token.get_secret_value()) < MIN_TOKEN_CHARS:
        raise ConfigError(f"ENGAGE_BRIDGE_WEB_TOKEN must be at least {MIN_TOKEN_CHARS} characters")
    has_auth = token is not None or proxy is not None
    problem = startup_problem(settings.http_host, has_auth, "http" in settings.roles)
    if problem:
        raise ConfigError(problem)
    policy = Policy.build(
        bind_host=settings.http_host,
        has_token=token is not None,
        public_url=settings.public_url,
        extra_hosts=web.allowed_hosts,
        public_playground=web.public_playground,
        proxy=proxy,
    )
    ttl = web.thread_ttl_seconds
    gate = Gate(policy, Sessions(redis, token, visitor_seconds=ttl))
    threads = ThreadMap(redis, idle_ttl_seconds=settings.thread_idle_ttl_seconds)
    limits = Limits(web.messages_per_minute, web.threads_per_hour)
    store = TranscriptStore(redis, ttl_seconds=ttl)
    default_agent = settings.file.routing.agent_for(WORKSPACE, CHANNEL)
    return WebAdapter(store, threads, gate, limits=limits, default_agent=default_agent)


__all__ = ["OPERATOR_PATH", "PLAYGROUND_PATH", "WebAdapter", "create_adapter"]
