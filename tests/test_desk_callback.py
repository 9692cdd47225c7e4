"""Reply callbacks to the desk: signed, retried on transient failures, permanent on 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.desk import DeskAdapter, create_adapter
from adapters.desk.callback import RetryPolicy
from adapters.desk.settings import DeskSettings
from bridge.config import Settings
from bridge.errors import ConfigError, PermanentPlatformError
from bridge.models import Reply, ReplyKind, ThreadKey
from tests.fakes.desk import FakeDesk
from tests.fixtures_desk import CALLBACK_SECRET, DESK_SECRET
from tests.redis_server import free_port

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
REPLY = Reply(
    thread=ThreadKey("desk", "acme", "tickets", "T-1"),
    text="Here is how.",
    idempotency_key="msg-42",
    kind=ReplyKind.AGENT,
    conversation_id="conv-1",
    agent="parrot",
)


@pytest.fixture
async def adapter(fake_desk: FakeDesk) -> AsyncIterator[DeskAdapter]:
    desk = DeskAdapter(
        signing_secret=DESK_SECRET,
        callback_url=fake_desk.url,
        callback_secret=CALLBACK_SECRET,
        retry=FAST_RETRY,
    )
    yield desk
    await desk.aclose()


async def test_send_posts_a_signed_callback_and_returns_the_desk_comment_id(
    adapter: DeskAdapter, fake_desk: FakeDesk
) -> None:
    assert await adapter.send(REPLY) == "comment-1"
    [callback] = fake_desk.callbacks
    assert callback == {
        "reply_id": "msg-42",
        "account_id": "acme",
        "ticket_id": "T-1",
        "text": "Here is how.",
        "kind": "agent",
        "conversation_id": "conv-1",
        "agent": "parrot",
        "in_reply_to": None,
        "_idempotency_key": "msg-42",
    }
    assert fake_desk.bad_signatures == 0


async def test_transient_failures_are_retried_until_the_desk_accepts(
    adapter: DeskAdapter, fake_desk: FakeDesk
) -> None:
    fake_desk.fail_next = 2
    await adapter.send(REPLY)
    assert fake_desk.attempts == 3
    assert len(fake_desk.callbacks) == 1


async def test_exhausted_retries_raise_a_permanent_error(
    adapter: DeskAdapter, fake_desk: FakeDesk
) -> None:
    fake_desk.fail_next = 10
    with pytest.raises(PermanentPlatformError, match="failed 3 times"):
        await adapter.send(REPLY)
    assert fake_desk.attempts == 3


async def test_a_4xx_is_permanent_at_once(adapter: DeskAdapter, fake_desk: FakeDesk) -> None:
    fake_desk.reject_status = 400
    with pytest.raises(PermanentPlatformError, match="HTTP 400"):
        await adapter.send(REPLY)
    assert fake_desk.attempts == 1


async def test_wrong_callback_secret_is_refused_by_the_desk(fake_desk: FakeDesk) -> None:
    desk = DeskAdapter(
        signing_secret=DESK_SECRET, callback_url=fake_desk.url, callback_secret="wrong"
    )
    with pytest.raises(PermanentPlatformError, match="HTTP 401"):
        await desk.send(REPLY)
    await desk.aclose()
    assert fake_desk.bad_signatures == 1


async def test_connection_errors_are_retried_then_permanent() -> None:
    # A port just bound and released: nothing listens there, every attempt is refused.
    async with httpx.AsyncClient() as http:
        desk = DeskAdapter(
            signing_secret=DESK_SECRET,
            callback_url=f"http://127.0.0.1:{free_port()}/callback",
            callback_secret=CALLBACK_SECRET,
            http=http,
            retry=FAST_RETRY,
        )
        with pytest.raises(PermanentPlatformError, match=r"failed 3 times \(last: ConnectError"):
            await desk.send(REPLY)


async def test_send_without_a_callback_url_is_permanent() -> None:
    desk = DeskAdapter(signing_secret=DESK_SECRET, callback_url=None, callback_secret=None)
    with pytest.raises(PermanentPlatformError, match="not configured"):
        await desk.send(REPLY)
    await desk.aclose()


def desk_only(**desk: Any) -> Settings:
    return Settings([DeskSettings(_env_file=None, **desk)], _env_file=None)


async def test_create_adapter_requires_a_signing_secret_and_a_callback_url() -> None:
    with pytest.raises(ConfigError, match="SIGNING_SECRET"):
        create_adapter(desk_only())
    with pytest.raises(ConfigError, match="CALLBACK_URL"):
        create_adapter(desk_only(signing_secret=DESK_SECRET))
    adapter = create_adapter(desk_only(signing_secret=DESK_SECRET, callback_url="http://d/cb"))
    assert adapter.name == "desk"
    await adapter.aclose()
