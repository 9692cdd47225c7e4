"""Engage request arguments prepared once: the request httpx sends is the one it built before."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bridge.engage.client import EngageClient
from bridge.engage.models import UserMessage
from bridge.engage.wire import Spelt, Wire, json_body
from tests.engage_mock import BASE_URL, conversation, message, sse

KEYS = {"X-Api-Key": "key", "X-Org-Id": "org"}


def built_by_httpx(
    http: httpx.AsyncClient, path: str, params: dict[str, str] | None, body: Any, stream: bool
) -> httpx.Request:
    """The request as httpx built it from a string URL, params and `json=` (the old way)."""
    headers = {**KEYS, "Accept": "text/event-stream"} if stream else KEYS
    return http.build_request("POST", BASE_URL + path, params=params, headers=headers, json=body)


def built_by_wire(
    http: httpx.AsyncClient, path: str, params: dict[str, str] | None, body: Any, stream: bool
) -> httpx.Request:
    url, kwargs = Wire(BASE_URL, KEYS, http).args(path, params, body, stream=stream)
    return http.build_request("POST", url, **kwargs)


def sorted_headers(request: httpx.Request) -> list[tuple[bytes, bytes]]:
    return sorted((name.lower(), value) for name, value in request.headers.raw)


BODIES = [
    {"messages": [{"role": "user", "content": 'Grüße \u2028 "q" <&>', "name": None}]},
    {"data": {"user": "U1", "n": 3, "nested": [1.5, True, None]}, "source": "slack"},
]
PARAMS = [None, {"agent": "pensions & more/ü", "stream": "true"}, {"message_id": "m 1?#"}]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("client_params", [None, {"trace": "1"}])
async def test_the_request_is_the_one_httpx_built_from_string_params_and_json(
    body: Any, params: dict[str, str] | None, stream: bool, client_params: dict[str, str] | None
) -> None:
    path = "/v1/conversations/c%201/chat"
    async with httpx.AsyncClient(headers={"X-Trace": "t"}, params=client_params) as http:
        before = built_by_httpx(http, path, params, body, stream)
        now = built_by_wire(http, path, params, body, stream)
    assert str(now.url) == str(before.url)
    assert now.content == before.content
    assert sorted_headers(now) == sorted_headers(before)


async def test_a_client_that_carries_the_api_keys_is_not_sent_them_twice() -> None:
    async with httpx.AsyncClient(headers=KEYS) as http:
        request = built_by_wire(http, "/v1/conversations", None, {"data": {}}, False)
    assert request.headers.get_list("X-Api-Key") == ["key"]
    assert request.headers["Content-Type"] == "application/json"


async def test_a_client_with_its_own_content_type_keeps_it_as_json_did() -> None:
    async with httpx.AsyncClient(headers={"Content-Type": "application/vnd.x+json"}) as http:
        before = built_by_httpx(http, "/v1/conversations", None, {"a": 1}, False)
        now = built_by_wire(http, "/v1/conversations", None, {"a": 1}, False)
    assert now.headers.get_list("Content-Type") == before.headers.get_list("Content-Type")


def test_a_body_that_json_cannot_encode_fails_as_with_httpx() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        json_body({"x": float("nan")})


async def test_urls_are_parsed_once_per_distinct_url_and_stay_right_per_conversation() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/chat"):
            body = sse(f"data: {json.dumps(message())}", "data: [DONE]")
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        return httpx.Response(201, json=conversation(id=f"c{len(seen)}"))

    transport = httpx.MockTransport(handler)
    async with EngageClient(
        base_url=BASE_URL, api_key="key", org_id="org", transport=transport
    ) as client:
        for _ in range(2):
            created = await client.create_conversation(data={"k": 1}, source="s")
            said = [UserMessage(content="q")]
            _ = [m async for m in client.chat_stream(created.id, said, agent="a b")]
    assert [str(r.url) for r in seen] == [
        f"{BASE_URL}/v1/conversations",
        f"{BASE_URL}/v1/conversations/c1/chat?agent=a+b&stream=true",
        f"{BASE_URL}/v1/conversations",
        f"{BASE_URL}/v1/conversations/c3/chat?agent=a+b&stream=true",
    ]
    assert {r.headers["X-Api-Key"] for r in seen} == {"key"}
    assert [r.headers["Accept"] for r in seen] == ["*/*", "text/event-stream"] * 2
    said = {"role": "user", "content": "q", "name": None}
    assert json.loads(seen[1].content) == {"messages": [said]}


SPELT_BASES = [BASE_URL, "http://127.0.0.1:8080/", "HTTPS://API.Example.com:443", "http://h/p"]
SPELT_PATHS = [
    "/v1/conversations",
    "/v1/conversations/conv_0123abc/chat",
    "/v1/conversations/c%201/chat",
    "/v1/conversations/c%c3%bc/chat",
    "/v1/conversations/a.b/../chat",
    "/v1//x",
    "/v1/x%",
]
SPELT_PARAMS: list[dict[str, Any] | None] = [
    None,
    {"agent": "parrot", "stream": "true"},
    {"agent": "pensions & more/ü"},
    {"limit": 20, "offset": 0, "reversed": "false"},
    {"flag": True},
]


@pytest.mark.parametrize("base", SPELT_BASES)
@pytest.mark.parametrize("path", SPELT_PATHS)
@pytest.mark.parametrize("params", SPELT_PARAMS)
async def test_a_url_for_the_lean_path_is_spelt_as_httpx_spells_it(
    base: str, path: str, params: dict[str, Any] | None
) -> None:
    async with httpx.AsyncClient() as http:
        url, kwargs = Wire(base, KEYS, http).args(path, params, None, spelt=True)
    query = {"params": params} if params else {}
    assert str(url) == str(httpx.URL(base.rstrip("/") + path, **query))
    assert "params" not in kwargs


async def test_a_chat_url_of_plain_characters_is_spelt_without_parsing() -> None:
    async with httpx.AsyncClient() as http:
        wire = Wire(BASE_URL, KEYS, http)
        chat, _ = wire.args("/v1/conversations/conv_1/chat", {"agent": "parrot"}, None, spelt=True)
        other, _ = wire.args("/v1/conversations/a.b", None, None, spelt=True)
        unasked, _ = wire.args("/v1/conversations/conv_1/chat", None, None)
    assert isinstance(chat, Spelt)
    assert isinstance(other, httpx.URL)
    assert isinstance(unasked, httpx.URL)
