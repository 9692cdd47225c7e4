"""The web pages are safe by default: who gets in, from where, and how often (issue 11)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from adapters.web import create_adapter
from adapters.web.store import owner_key, transcript_key
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.models import ThreadKey
from bridge.runtime import BridgeRuntime
from tests.fixtures_desk import web_settings

TOKEN = "operator-token-for-tests-0123"
OFF_LOOPBACK = {"http_host": "0.0.0.0", "web": {"token": TOKEN}}


@pytest.fixture
async def http(web_bridge: BridgeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_bridge.http_url or "") as client:
        yield client


@pytest.fixture
async def stranger(web_bridge: BridgeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser: its own cookie jar."""
    async with httpx.AsyncClient(base_url=web_bridge.http_url or "") as client:
        yield client


async def new_thread(http: httpx.AsyncClient) -> str:
    response = await http.post("/playground/api/threads", json={})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def message(text: str = "hello", as_: str = "user") -> dict[str, str]:
    return {"text": text, "as": as_, "client_id": uuid.uuid4().hex}


async def sign_in(http: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await http.post("/web/login", data={"token": token, "next": "/operator"})


# --- start-up -------------------------------------------------------------------------------


def test_pages_on_all_interfaces_without_a_token_refuse_to_start(
    redis_client: aioredis.Redis,
) -> None:
    settings = Settings(http_host="0.0.0.0", _env_file=None)
    with pytest.raises(ConfigError, match="ENGAGE_BRIDGE_WEB_TOKEN") as refused:
        create_adapter(settings, redis_client, web_settings())
    assert "ENGAGE_BRIDGE_WEB_ENABLED=false" in str(refused.value)


def test_a_worker_only_process_serves_no_pages_and_needs_no_token(
    redis_client: aioredis.Redis,
) -> None:
    settings = Settings(http_host="0.0.0.0", roles={"workers"}, _env_file=None)
    assert create_adapter(settings, redis_client, web_settings()).name == "web"


def test_a_short_token_is_refused(redis_client: aioredis.Redis) -> None:
    settings = Settings(http_host="0.0.0.0", _env_file=None)
    with pytest.raises(ConfigError, match="at least 16"):
        create_adapter(settings, redis_client, web_settings(token="short"))


# --- off loopback: the token is required ----------------------------------------------------


@pytest.mark.parametrize("web_options", [OFF_LOOPBACK])
@pytest.mark.parametrize(
    "path", ["/operator", "/operator/threads/slack%3AT1%3AC1%3A1700.1", "/playground"]
)
async def test_pages_off_loopback_send_strangers_to_sign_in(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/web/login?next=")


@pytest.mark.parametrize("web_options", [OFF_LOOPBACK])
async def test_the_api_off_loopback_answers_401_without_the_token(http: httpx.AsyncClient) -> None:
    created = await http.post("/playground/api/threads", json={})
    assert created.status_code == 401
    assert "error" in created.json()


@pytest.mark.parametrize("web_options", [OFF_LOOPBACK])
async def test_the_token_signs_in_with_a_strict_http_only_cookie(http: httpx.AsyncClient) -> None:
    wrong = await sign_in(http, "not-the-token-at-all")
    assert wrong.status_code == 401
    assert (await http.get("/operator")).status_code == 303
    right = await sign_in(http)
    assert right.status_code == 303
    assert right.headers["location"] == "/operator"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert TOKEN.lower() not in cookie
    assert (await http.get("/operator")).status_code == 200
    thread_id = await new_thread(http)
    staff = message("Staff here", as_="staff")
    posted = await http.post(f"/playground/api/threads/{thread_id}/messages", json=staff)
    assert posted.status_code == 200


@pytest.mark.parametrize("web_options", [OFF_LOOPBACK])
async def test_a_forged_operator_cookie_is_not_accepted(http: httpx.AsyncClient) -> None:
    http.cookies.set("eb_operator", f"op-9999999999-{'0' * 16}.{'0' * 40}")
    assert (await http.get("/operator")).status_code == 303


@pytest.mark.parametrize("web_options", [OFF_LOOPBACK])
async def test_sign_in_never_redirects_off_site(http: httpx.AsyncClient) -> None:
    response = await http.post("/web/login", data={"token": TOKEN, "next": "//evil.example/x"})
    assert response.headers["location"] == "/operator"


@pytest.mark.parametrize(
    "web_options",
    [{"http_host": "0.0.0.0", "web": {"token": TOKEN, "public_playground": True}}],
)
async def test_a_public_playground_lets_visitors_chat_but_not_act_as_staff(
    http: httpx.AsyncClient,
) -> None:
    thread_id = await new_thread(http)
    base = f"/playground/api/threads/{thread_id}"
    assert (await http.post(f"{base}/messages", json=message())).status_code == 200
    as_staff = await http.post(f"{base}/messages", json=message(as_="staff"))
    assert as_staff.status_code == 403
    command = {"command": "resolve", "client_id": uuid.uuid4().hex}
    assert (await http.post(f"{base}/commands", json=command)).status_code == 403
    # Choosing the agent is staff's, with the first message as with the command.
    fresh = f"/playground/api/threads/{await new_thread(http)}"
    with_agent = await http.post(f"{fresh}/messages", json={**message(), "agent": "parrot-twice"})
    assert with_agent.status_code == 403
    assert (await http.get("/operator")).status_code == 303


# --- loopback: the local browser is the operator, but only its own ---------------------------


async def test_on_loopback_without_configuration_the_pages_are_open(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/playground")).status_code == 200
    assert (await http.get("/operator")).status_code == 200


async def test_a_request_through_a_proxy_is_not_local(http: httpx.AsyncClient) -> None:
    response = await http.get("/operator", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 303


@pytest.mark.parametrize("path", ["/operator", "/playground"])
async def test_a_foreign_host_header_is_refused(http: httpx.AsyncClient, path: str) -> None:
    # DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1.
    response = await http.get(path, headers={"Host": "evil.example:8080"})
    assert response.status_code == 421


async def test_a_foreign_host_cannot_post(http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    response = await http.post(
        f"/playground/api/threads/{thread_id}/messages",
        json=message(),
        headers={"Host": "evil.example"},
    )
    assert response.status_code == 421


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
    ],
)
async def test_a_cross_origin_post_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, headers: dict[str, str]
) -> None:
    thread_id = await new_thread(http)
    command = {"command": "resolve", "client_id": uuid.uuid4().hex}
    base = f"/playground/api/threads/{thread_id}"
    assert (await http.post(f"{base}/commands", json=command, headers=headers)).status_code == 403
    assert (await http.post(f"{base}/messages", json=message(), headers=headers)).status_code == 403
    assert (
        await redis_client.llen(transcript_key(ThreadKey("web", "playground", "local", thread_id)))
        == 0
    )


async def test_a_same_origin_post_from_the_page_is_accepted(http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    origin = str(http.base_url).rstrip("/")
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    response = await http.post(
        f"/playground/api/threads/{thread_id}/messages", json=message(), headers=headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/playground", "/operator", "/web/login", "/web/static/style.css"]
)
async def test_pages_cannot_be_framed_or_sniffed(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_another_visitors_thread_is_not_found(
    http: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    thread_id = await new_thread(http)
    base = f"/playground/api/threads/{thread_id}"
    assert (await http.post(f"{base}/messages", json=message("mine"))).status_code == 200
    assert (await stranger.get(base)).status_code == 404
    assert (await stranger.post(f"{base}/messages", json=message("theirs"))).status_code == 404
    await new_thread(stranger)  # a cookie of its own does not help either
    assert (await stranger.get(base)).status_code == 404
    assert (await http.get(base)).status_code == 200


async def test_a_thread_id_nobody_created_is_not_found(http: httpx.AsyncClient) -> None:
    await new_thread(http)
    response = await http.post("/playground/api/threads/abcd1234/messages", json=message())
    assert response.status_code == 404


async def test_a_forged_visitor_cookie_is_not_accepted(
    http: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    thread_id = await new_thread(http)
    visitor = http.cookies["eb_visitor"].rpartition(".")[0]
    stranger.cookies.set("eb_visitor", f"{visitor}.{'0' * 40}")
    assert (await stranger.get(f"/playground/api/threads/{thread_id}")).status_code == 404


@pytest.mark.parametrize("web_options", [{"web": {"messages_per_minute": 3}}])
async def test_a_visitor_over_its_rate_limit_gets_429_with_retry_after(
    http: httpx.AsyncClient,
) -> None:
    thread_id = await new_thread(http)
    base = f"/playground/api/threads/{thread_id}/messages"
    statuses = [(await http.post(base, json=message(f"m{i}"))).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await http.post(base, json=message("again"))
    assert 1 <= int(limited.headers["retry-after"]) <= 60


@pytest.mark.parametrize("web_options", [{"web": {"thread_ttl_seconds": 3600}}])
async def test_web_threads_expire_sooner_than_platform_threads(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    thread_id = await new_thread(http)
    base = f"/playground/api/threads/{thread_id}/messages"
    assert (await http.post(base, json=message())).status_code == 200
    thread = ThreadKey("web", "playground", "local", thread_id)
    assert 0 < await redis_client.ttl(transcript_key(thread)) <= 3600
    assert 0 < await redis_client.ttl(owner_key(thread)) <= 3600


async def test_an_out_of_range_poll_position_is_a_client_error(http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    response = await http.get(f"/playground/api/threads/{thread_id}?after=99999999999999999999")
    assert response.status_code == 400


async def test_playground_posts_are_behind_the_ingress_guard(http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    huge = {"text": "x" * (200 * 1024), "client_id": "abcd1234"}
    response = await http.post(f"/playground/api/threads/{thread_id}/messages", json=huge)
    assert response.status_code == 413
    broken = await http.post(
        f"/playground/api/threads/{thread_id}/messages",
        content=b'{"text": "unfinished',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    as_json = await http.post("/web/login", json={"token": TOKEN})
    assert as_json.status_code == 415


@pytest.mark.parametrize("web_options", [OFF_LOOPBACK])
async def test_a_signed_in_operator_can_sign_out(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    page = await http.get("/operator")
    assert 'action="/web/logout"' in page.text
    out = await http.post("/web/logout")
    assert out.status_code == 303
    assert (await http.get("/operator")).status_code == 303


async def test_the_local_operator_has_nothing_to_sign_out_of(http: httpx.AsyncClient) -> None:
    assert 'action="/web/logout"' not in (await http.get("/operator")).text


@pytest.mark.parametrize("path", ["/operator", "/playground/api/agents"])
async def test_pages_with_thread_data_are_not_cached(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.get(path)).headers["cache-control"] == "no-store"


PROXY_SECRET = "proxy-shared-secret-0123456"
BEHIND_PROXY = {
    "http_host": "0.0.0.0",
    "web": {
        "proxy_user_header": "X-Forwarded-User",
        "proxy_secret": PROXY_SECRET,
        "staff_users": ["ann@example.com"],
    },
}


def through_proxy(user: str, secret: str = PROXY_SECRET) -> dict[str, str]:
    return {"X-Forwarded-User": user, "X-Engage-Bridge-Proxy-Secret": secret}


@pytest.mark.parametrize("web_options", [BEHIND_PROXY])
async def test_a_trusted_proxys_staff_user_sees_the_operator_view(
    http: httpx.AsyncClient,
) -> None:
    assert (
        await http.get("/operator", headers=through_proxy("ann@example.com"))
    ).status_code == 200
    other = await http.get("/operator", headers=through_proxy("bob@example.com"))
    assert other.status_code == 303  # signed in at the proxy, but not staff


@pytest.mark.parametrize("web_options", [BEHIND_PROXY])
async def test_a_proxy_user_who_is_not_staff_chats_but_cannot_act_as_staff(
    http: httpx.AsyncClient,
) -> None:
    bob = through_proxy("bob@example.com")
    created = await http.post("/playground/api/threads", json={}, headers=bob)
    assert created.status_code == 201
    base = f"/playground/api/threads/{created.json()['id']}"
    assert (await http.post(f"{base}/messages", json=message(), headers=bob)).status_code == 200
    staff = await http.post(f"{base}/messages", json=message(as_="staff"), headers=bob)
    assert staff.status_code == 403


@pytest.mark.parametrize("web_options", [BEHIND_PROXY])
async def test_a_user_header_without_the_proxys_secret_is_ignored(
    http: httpx.AsyncClient,
) -> None:
    spoofed = through_proxy("ann@example.com", secret="guessed-secret-guessed")
    assert (await http.get("/operator", headers=spoofed)).status_code == 303
    bare = {"X-Forwarded-User": "ann@example.com"}
    assert (await http.post("/playground/api/threads", json={}, headers=bare)).status_code == 401


def test_a_proxy_user_header_without_a_secret_is_refused(redis_client: aioredis.Redis) -> None:
    settings = Settings(http_host="0.0.0.0", _env_file=None)
    web = web_settings(proxy_user_header="X-Forwarded-User")
    with pytest.raises(ConfigError, match="ENGAGE_BRIDGE_WEB_PROXY_SECRET"):
        create_adapter(settings, redis_client, web)
