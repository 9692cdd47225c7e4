"""The emulator refuses JSON it could not answer about (NaN, Infinity, lone surrogates): 400."""

from __future__ import annotations

import httpx
import pytest

from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, create_app

KEY = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID, "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"data": {"a": NaN}}',
        b'{"data": {"a": 1e999}}',
        b'{"source": Infinity}',
        b'{"source": "\\ud800"}',
        b'{"\\udfff": 1}',
    ],
)
async def test_json_that_cannot_be_echoed_is_400_not_500(raw: bytes) -> None:
    transport = httpx.ASGITransport(app=create_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as http:
        response = await http.post("/v1/conversations", content=raw, headers=KEY)
    assert response.status_code == 400, response.text
    assert "detail" in response.json()


async def test_ordinary_json_and_non_json_are_left_to_the_routes() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as http:
        created = await http.post("/v1/conversations", content=b'{"source": "s"}', headers=KEY)
        broken = await http.post("/v1/conversations", content=b"{not json", headers=KEY)
    assert created.status_code == 200, created.text
    assert broken.status_code == 422
