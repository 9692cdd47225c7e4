"""OAuth mode's per-workspace clients: the installation read once per period, not per call."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError

from adapters.slack.clients import INSTALLATION_SECONDS, Clients, build_client
from adapters.slack.installations import RedisInstallationStore
from bridge.errors import PermanentPlatformError
from tests.fakes.slack import FakeSlack
from tests.test_slack_installations import installation


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def commands(redis: aioredis.Redis) -> int:
    """Commands the server has run, INFO itself left out."""
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(int(s["calls"]) for name, s in stats.items() if name != "cmdstat_info")


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> RedisInstallationStore:
    store = RedisInstallationStore(redis_client)
    await store.async_save(installation("T1", token="xoxb-one"))
    await store.async_save(installation("T2", token="xoxb-two"))
    return store


def clients_of(store: RedisInstallationStore, clock: Clock) -> Clients:
    return Clients(build_client(None, "http://127.0.0.1:9/api/"), store, clock=clock)


async def test_a_workspace_reads_its_installation_once_per_period(
    store: RedisInstallationStore, redis_client: aioredis.Redis
) -> None:
    clock = Clock()
    clients = clients_of(store, clock)
    before = await commands(redis_client)
    tokens = {(await clients.for_team("T1")).token for _ in range(10)}
    assert tokens == {"xoxb-one"}
    read = await commands(redis_client) - before
    assert read == 2  # the team's route and its installation, for the first call only
    clock.now += INSTALLATION_SECONDS - 1
    before = await commands(redis_client)
    await clients.for_team("T1")
    assert await commands(redis_client) == before
    clock.now += 1
    await clients.for_team("T1")
    assert await commands(redis_client) - before == read  # the period is over: read again


async def test_a_reinstall_or_an_uninstall_in_this_process_is_seen_at_once(
    store: RedisInstallationStore,
) -> None:
    clients = clients_of(store, Clock())
    assert (await clients.for_team("T1")).token == "xoxb-one"
    assert (await clients.for_team("T2")).token == "xoxb-two"
    await store.async_save(installation("T1", token="xoxb-one-again"))
    assert (await clients.for_team("T1")).token == "xoxb-one-again"
    await store.async_delete_all(enterprise_id=None, team_id="T2")
    with pytest.raises(PermanentPlatformError):
        await clients.for_team("T2")


async def test_an_org_wide_reinstall_drops_every_workspace_it_may_serve(
    store: RedisInstallationStore,
) -> None:
    await store.async_save(installation(None, enterprise="E1", org_wide=True, token="xoxb-org"))
    await store.remember_team("T9", "E1", org_wide=True)
    clients = clients_of(store, Clock())
    assert (await clients.for_team("T9")).token == "xoxb-org"
    await store.async_save(installation(None, enterprise="E1", org_wide=True, token="xoxb-org2"))
    assert (await clients.for_team("T9")).token == "xoxb-org2"


async def test_a_token_slack_refused_is_read_again_on_the_next_call(
    store: RedisInstallationStore, redis_client: aioredis.Redis
) -> None:
    clients = clients_of(store, Clock())
    await clients.for_team("T1")
    await clients.for_team("T2")
    # Another process re-installed T1 (this one is not told); Slack refuses the old token.
    elsewhere = RedisInstallationStore(redis_client)
    await elsewhere.async_save(installation("T1", token="xoxb-elsewhere"))
    assert (await clients.for_team("T1")).token == "xoxb-one"  # cached: not read yet
    clients.forget("xoxb-one")
    before = await commands(redis_client)
    assert (await clients.for_team("T1")).token == "xoxb-elsewhere"
    assert await commands(redis_client) - before == 2
    before = await commands(redis_client)
    assert (await clients.for_team("T2")).token == "xoxb-two"  # other workspaces kept
    assert await commands(redis_client) == before


CALLS = [  # a reaction, look-ups, feedback's modal and acknowledgement
    ("reactions.add", "reactions_add", {"channel": "C1", "timestamp": "1.0", "name": "eyes"}),
    ("conversations.replies", "conversations_replies", {"channel": "C1", "ts": "1.0"}),
    ("conversations.info", "conversations_info", {"channel": "C1"}),
    ("views.open", "views_open", {"trigger_id": "t", "view": {"type": "modal"}}),
    ("chat.postEphemeral", "chat_postEphemeral", {"channel": "C1", "user": "U1", "text": "hi"}),
]


@pytest.mark.parametrize(("method", "call", "args"), CALLS)
async def test_a_refused_token_is_told_whichever_call_slack_refuses(
    fake_slack: FakeSlack, method: str, call: str, args: dict[str, Any]
) -> None:
    told: list[tuple[str, str, str]] = []
    clients = Clients(build_client(fake_slack.bot_token, fake_slack.api_url), refused=tell(told))
    client = await clients.for_team("T1")
    fake_slack.fail_next(method, status=200, error="channel_not_found")
    with pytest.raises(SlackApiError):
        await getattr(client, call)(**args)
    assert told == []
    for error in ("token_revoked", "invalid_auth", "account_inactive"):
        fake_slack.fail_next(method, status=200, error=error)
        with pytest.raises(SlackApiError):
            await getattr(client, call)(**args)
    assert told == [("T1", fake_slack.bot_token, e) for e in ("token_revoked", "invalid_auth",
                                                              "account_inactive")]  # fmt: skip


async def test_a_refused_token_is_forgotten_before_it_is_told(
    store: RedisInstallationStore, redis_client: aioredis.Redis, fake_slack: FakeSlack
) -> None:
    told: list[tuple[str, str, str]] = []
    base = build_client(None, fake_slack.api_url)
    clients = Clients(base, store, refused=tell(told))
    client = await clients.for_team("T1")
    fake_slack.fail_next("reactions.add", status=200, error="token_revoked")
    with pytest.raises(SlackApiError):
        await client.reactions_add(channel="C1", timestamp="1.0", name="eyes")
    assert told == [("T1", "xoxb-one", "token_revoked")]
    before = await commands(redis_client)
    await clients.for_team("T1")
    assert await commands(redis_client) - before == 2  # read again


def tell(told: list[tuple[str, str, str]]) -> Any:
    return lambda *said: told.append(said)
