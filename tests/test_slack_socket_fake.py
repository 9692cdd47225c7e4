"""The fake's Socket Mode behaves like Slack's for several connections of one app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack
from tests.fakes.slack_socket import Delivery, wait_until


class Link:
    """A bare WebSocket client of the fake: what a Socket Mode app sees on one connection."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def ack(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps({"envelope_id": frame["envelope_id"]}))


@pytest.fixture
async def open_link(fake_slack: FakeSlack) -> AsyncIterator[Any]:
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)
    session = aiohttp.ClientSession()

    async def connect() -> Link:
        response = await client.apps_connections_open(app_token=fake_slack.app_token)
        link = Link(await session.ws_connect(response["url"]))
        hello = await link.frame()
        assert hello["type"] == "hello"
        return link

    yield connect
    await session.close()


@pytest.fixture
def quick(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.socket_mode.ack_timeout = 0.2
    fake_slack.socket_mode.retry_delays = (0.0,)
    return fake_slack


async def test_each_connections_open_gives_a_new_url_and_an_eleventh_link_is_refused(
    fake_slack: FakeSlack, open_link: Any
) -> None:
    links = [await open_link() for _ in range(10)]
    assert len(fake_slack.connections) == 10
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)
    urls = {(await client.apps_connections_open(app_token=fake_slack.app_token))["url"]}
    urls.add((await client.apps_connections_open(app_token=fake_slack.app_token))["url"])
    assert len(urls) == 2
    async with aiohttp.ClientSession() as session, session.ws_connect(urls.pop()) as ws:
        refused = json.loads((await ws.receive()).data)
        assert refused["reason"] == "too_many_websockets"
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
    assert len(fake_slack.connections) == 10
    assert links


async def test_envelopes_are_spread_one_connection_each(
    fake_slack: FakeSlack, open_link: Any
) -> None:
    links = [await open_link() for _ in range(3)]
    pushed = [await fake_slack.push({"n": n}) for n in range(6)]
    received = [[(await link.frame())["payload"]["n"] for _ in range(2)] for link in links]
    assert sorted(n for got in received for n in got) == list(range(6))
    assert [len(c.delivered) for c in fake_slack.connections] == [2, 2, 2]
    assert all(len(e.deliveries) == 1 for e in pushed)


async def test_an_unacked_envelope_is_retried_on_another_connection_then_given_up(
    quick: FakeSlack, open_link: Any
) -> None:
    first, second = await open_link(), await open_link()
    envelope = await quick.push({"n": 1}, to=quick.connections[0])
    frames = [await first.frame(), await second.frame(), await first.frame(), await second.frame()]
    assert [(f["retry_attempt"], f["retry_reason"]) for f in frames] == [
        (0, ""),
        (1, "timeout"),
        (2, "timeout"),
        (3, "timeout"),
    ]
    assert {f["envelope_id"] for f in frames} == {envelope.envelope_id}
    await wait_until(lambda: envelope.given_up, 5)
    assert not envelope.acked.is_set()
    assert envelope.deliveries == [Delivery(1, 0), Delivery(2, 1), Delivery(1, 2), Delivery(2, 3)]


async def test_an_acked_envelope_is_not_retried_and_a_late_ack_counts(
    quick: FakeSlack, open_link: Any
) -> None:
    link = await open_link()
    envelope = await quick.push({"n": 1})
    await link.ack(await link.frame())
    await asyncio.wait_for(envelope.acked.wait(), 5)
    late = await quick.push({"n": 2})
    first = await link.frame()
    again = await link.frame()  # retried after the timeout: then the first attempt is acked
    await link.ack(first)
    await asyncio.wait_for(late.acked.wait(), 5)
    assert again["retry_attempt"] == 1
    assert len(envelope.deliveries) == 1


async def test_a_dropped_connections_unacked_envelopes_go_to_the_others(
    quick: FakeSlack, open_link: Any
) -> None:
    doomed, survivor = await open_link(), await open_link()
    envelope = await quick.push({"n": 1}, to=quick.connections[0])
    assert (await doomed.frame())["envelope_id"] == envelope.envelope_id
    quick.connections[0].abort()
    frame = await survivor.frame()
    assert (frame["envelope_id"], frame["retry_attempt"]) == (envelope.envelope_id, 1)
    await survivor.ack(frame)
    await asyncio.wait_for(envelope.acked.wait(), 5)
    assert envelope.acked_on == 2


async def test_refresh_requested_keeps_the_old_link_open_for_the_grace_then_closes_it(
    fake_slack: FakeSlack, open_link: Any
) -> None:
    fake_slack.socket_mode.disconnect_grace = 0.2
    old = await open_link()
    task = asyncio.create_task(fake_slack.disconnect("refresh_requested"))
    notice = await old.frame()
    assert (notice["type"], notice["reason"]) == ("disconnect", "refresh_requested")
    new = await open_link()
    await asyncio.wait_for(task, 5)
    message = await asyncio.wait_for(old.ws.receive(), 5)
    assert message.type == aiohttp.WSMsgType.CLOSE
    envelope = await fake_slack.push({"n": 1})
    await new.ack(await new.frame())
    await asyncio.wait_for(envelope.acked.wait(), 5)


async def test_link_disabled_closes_every_link_and_holds_envelopes_until_enabled(
    fake_slack: FakeSlack, open_link: Any
) -> None:
    links = [await open_link() for _ in range(2)]
    await fake_slack.disconnect("link_disabled")
    for link in links:
        assert (await link.frame())["reason"] == "link_disabled"
    assert fake_slack.connections == []
    held = await fake_slack.push({"n": 1})
    assert held.deliveries == []
    fake_slack.socket_mode.enable()
    link = await open_link()
    frame = await link.frame()
    assert frame["envelope_id"] == held.envelope_id
