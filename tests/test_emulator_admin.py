"""The emulator's /_emulator/ test controls: off unless enabled, and never for a browser page."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adapters.web.settings import WebSettings
from bridge.cli import build_parser
from bridge.config import Settings
from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, EmulatorState, create_app
from bridge.runtime import BridgeRuntime
from tests.redis_server import RedisServer

KEY = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID}


async def client_for(state: EmulatorState, *, admin: bool) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(state, admin=admin))
    return httpx.AsyncClient(transport=transport, base_url="http://emulator.test")


@pytest.fixture
async def with_data() -> EmulatorState:
    state = EmulatorState()
    async with await client_for(state, admin=False) as http:
        created = await http.post("/v1/conversations", json={}, headers=KEY)
        assert created.status_code == 200, created.text
    return state


async def test_by_default_there_are_no_test_controls(with_data: EmulatorState) -> None:
    async with await client_for(with_data, admin=False) as http:
        reset = await http.post("/_emulator/reset")
        faults = await http.put("/_emulator/faults", json={"rate": 1.0})
    assert (reset.status_code, faults.status_code) == (404, 404)
    assert len(with_data.conversations) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "multipart/form-data; boundary=x"},
    ],
)
async def test_enabled_controls_refuse_what_a_browser_page_can_send(
    with_data: EmulatorState, headers: dict[str, str]
) -> None:
    async with await client_for(with_data, admin=True) as http:
        response = await http.post("/_emulator/reset", content=b"x=1", headers=headers)
    assert response.status_code in (403, 415)
    assert len(with_data.conversations) == 1


async def test_enabled_controls_work_for_test_code(with_data: EmulatorState) -> None:
    async with await client_for(with_data, admin=True) as http:
        assert (await http.post("/_emulator/reset")).status_code == 200
    assert with_data.conversations == {}


def test_the_emulator_command_serves_the_controls_only_with_admin() -> None:
    parser = build_parser()
    assert parser.parse_args(["emulator"]).admin is False
    assert parser.parse_args(["emulator", "--admin"]).admin is True


async def test_the_emulator_mounted_by_run_has_no_test_controls(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = Settings(
        _env_file=None,
        http_port=0,
        data_dir=tmp_path / "data",
        redis_url=redis_server.url,
        platforms=[WebSettings(_env_file=None, enabled=False)],
    )
    async with BridgeRuntime(settings, adapters=[], roles=frozenset()) as rt:
        assert rt.emulator_url is not None
        async with httpx.AsyncClient(base_url=rt.emulator_url) as http:
            agents = await http.get("/v1/agents", headers=KEY)
            reset = await http.post(
                "/_emulator/reset",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=b"a=1",
            )
    assert agents.status_code == 200
    assert reset.status_code == 404
