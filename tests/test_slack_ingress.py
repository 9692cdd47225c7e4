"""/slack/events behind the guard: size and signature before Bolt parses, malformed bodies 400."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from adapters.slack import SlackAdapter, create_adapter
from adapters.slack.signing import sign, verifier
from bridge.guard import BadSignature
from bridge.http import create_app
from bridge.metrics import Metrics
from bridge.models import InboundMessage, SubmitResult, ThreadKey
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, slash_command, user_message
from tests.fixtures_slack import slack_settings

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []

    async def submit(self, message: InboundMessage) -> SubmitResult:
        self.messages.append(message)
        return SubmitResult(accepted=True, reason="stored")

    async def is_known_thread(self, thread: ThreadKey) -> bool:
        return False


async def ready() -> dict[str, str]:
    return {"redis": "ok"}


@pytest.fixture
async def adapter(fake_slack: FakeSlack, redis_client: Any) -> AsyncIterator[SlackAdapter]:
    slack_adapter = create_adapter(slack_settings(fake_slack), redis_client)
    yield slack_adapter
    await slack_adapter.aclose()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def client(adapter: SlackAdapter, inbox: Inbox) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(metrics=Metrics(), readiness=ready, routes=adapter.routes(inbox))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as http:
        yield http


def signed(secret: str, raw: bytes, content_type: str = JSON) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, raw),
    }


MALFORMED = {
    "truncated JSON": (b'{"type": "event_callback", "event": {"type": "mess', JSON),
    "not JSON": (b"hello there", JSON),
    "a JSON array": (b'[{"type": "event_callback"}]', JSON),
    "deep nesting": (b'{"event": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", JSON),
    "bad UTF-8": (b'{"type": "\xff"}', JSON),
    "a form with a truncated payload": (b"payload=%7B", FORM),
    "a form whose payload is an array": (b"payload=%5B1%5D", FORM),
    "authorizations not a list": (b'{"type": "event_callback", "authorizations": "x"}', JSON),
    "an event that is a list": (b'{"type": "event_callback", "event": []}', JSON),
    "an enterprise that is a number": (b'{"enterprise": 5, "team": 7}', JSON),
    "an action list that is empty": (
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%5D%7D",
        FORM,
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_signed_bodies_are_400_with_one_line_and_no_traceback(
    client: httpx.AsyncClient,
    fake_slack: FakeSlack,
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    raw, content_type = MALFORMED[case]
    with caplog.at_level(logging.INFO):
        response = await client.post(
            "/slack/events",
            content=raw,
            headers=signed(fake_slack.signing_secret, raw, content_type),
        )
    assert response.status_code == 400, response.text
    assert inbox.messages == []
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_unsigned_bodies_are_401_whatever_they_hold(
    client: httpx.AsyncClient, inbox: Inbox, case: str
) -> None:
    raw, content_type = MALFORMED[case]
    response = await client.post(
        "/slack/events", content=raw, headers={"Content-Type": content_type}
    )
    assert response.status_code == 401
    assert inbox.messages == []


@pytest.mark.parametrize("forgery", ["unsigned", "wrong secret", "stale", "body changed"])
async def test_a_forged_event_is_401_and_nothing_is_stored(
    client: httpx.AsyncClient, fake_slack: FakeSlack, inbox: Inbox, forgery: str
) -> None:
    # The guard's check on the raw bytes is the only one: Bolt does not verify again.
    event = user_message(fake_slack, channel="D1", channel_type="im", text="forged")
    raw = json.dumps(envelope(fake_slack, event)).encode()
    headers = signed(fake_slack.signing_secret, raw)
    if forgery == "unsigned":
        headers = {"Content-Type": JSON}
    elif forgery == "wrong secret":
        headers = signed("not-the-secret", raw)
    elif forgery == "stale":
        stamp = str(int(time.time()) - 6 * 60)
        headers["X-Slack-Request-Timestamp"] = stamp
        headers["X-Slack-Signature"] = sign(fake_slack.signing_secret, stamp, raw)
    else:
        raw = raw.replace(b"forged", b"FORGED")
    response = await client.post("/slack/events", content=raw, headers=headers)
    assert response.status_code == 401
    assert inbox.messages == []


async def test_a_signed_event_still_reaches_bolt_and_is_stored(
    client: httpx.AsyncClient, fake_slack: FakeSlack, inbox: Inbox
) -> None:
    event = user_message(fake_slack, channel="D1", channel_type="im", text="hi")
    raw = json.dumps(envelope(fake_slack, event)).encode()
    response = await client.post(
        "/slack/events", content=raw, headers=signed(fake_slack.signing_secret, raw)
    )
    assert response.status_code == 200
    assert [m.text for m in inbox.messages] == ["hi"]


async def test_url_verification_still_echoes_the_challenge(
    client: httpx.AsyncClient, fake_slack: FakeSlack
) -> None:
    raw = json.dumps({"type": "url_verification", "challenge": "abc", "token": "t"}).encode()
    response = await client.post(
        "/slack/events", content=raw, headers=signed(fake_slack.signing_secret, raw)
    )
    assert response.status_code == 200
    assert "abc" in response.text


async def test_a_slash_command_form_still_reaches_bolt(
    client: httpx.AsyncClient, fake_slack: FakeSlack
) -> None:
    from urllib.parse import urlencode

    raw = urlencode(slash_command(fake_slack, "help")).encode()
    response = await client.post(
        "/slack/events", content=raw, headers=signed(fake_slack.signing_secret, raw, FORM)
    )
    assert response.status_code == 200
    assert "Usage" in response.text


async def test_a_signed_two_megabyte_event_is_413_and_never_parsed(
    client: httpx.AsyncClient, fake_slack: FakeSlack, inbox: Inbox
) -> None:
    event = user_message(fake_slack, channel="D1", channel_type="im", text="x" * 2_000_000)
    raw = json.dumps(envelope(fake_slack, event)).encode()
    headers = signed(fake_slack.signing_secret, raw)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    declared = await client.post("/slack/events", content=raw, headers=headers)
    streamed = await client.post("/slack/events", content=chunks(), headers=headers)
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert inbox.messages == []


async def test_other_media_types_are_415(client: httpx.AsyncClient, fake_slack: FakeSlack) -> None:
    raw = b'{"type": "url_verification", "challenge": "abc"}'
    headers = signed(fake_slack.signing_secret, raw, "text/plain")
    response = await client.post("/slack/events", content=raw, headers=headers)
    assert response.status_code == 415


@pytest.mark.parametrize("when", [-301, 301])
def test_the_verifier_refuses_timestamps_outside_five_minutes(when: int) -> None:
    raw = b"{}"
    stamp = str(int(time.time()) + when)
    headers = Headers(
        {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign("s", stamp, raw)}
    )
    with pytest.raises(BadSignature):
        verifier("s")(headers, raw, time.time())
    verifier("s")(headers, raw, float(stamp))


def test_an_empty_signing_secret_verifies_nothing_not_even_bodies_signed_with_it() -> None:
    raw = b'{"type": "event_callback"}'
    stamp = str(int(time.time()))
    headers = Headers(
        {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign("", stamp, raw)}
    )
    with pytest.raises(BadSignature, match="no Slack signing secret"):
        verifier("")(headers, raw, time.time())


@pytest.mark.parametrize("signature", ["", "v0=", "v0=" + "0" * 64, "v0=é", "garbage"])
def test_malformed_signatures_are_refused_not_crashed_on(signature: str) -> None:
    stamp = str(int(time.time()))
    headers = Headers({"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature})
    with pytest.raises(BadSignature):
        verifier("s")(headers, b"{}", time.time())
