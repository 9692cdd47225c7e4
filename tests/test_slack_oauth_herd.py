"""OAuth mode under a first burst: `auth.test` once per installation, not once per event."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from typing import Any

import pytest

from adapters.slack.app import SlackAdapter
from adapters.slack.authorize import REFUSAL_SECONDS
from adapters.slack.installations import RedisInstallationStore
from tests.fakes.slack import FakeSlack, Workspace
from tests.fakes.slack_events import envelope, user_message
from tests.test_slack_oauth import ACME, GLOBEX, GRID, GRID_TEAM, OAuthBridge, oauth_bridge

pytestmark = pytest.mark.slow
_channels = itertools.count()


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    async with oauth_bridge(fake_slack, emulator, redis_client) as running:
        yield running


async def burst(bridge: OAuthBridge, where: list[tuple[Workspace, str]], per: int) -> list[str]:
    """`per` DMs at once into each (installation, team): the channels they went to."""
    bodies, channels = [], []
    for _ in range(per):
        for workspace, team in where:
            channel = f"D0B{next(_channels)}"
            m = user_message(bridge.slack, channel=channel, channel_type="im", team=team)
            bodies.append(envelope(bridge.slack, m, workspace))
            channels.append(channel)
    deliveries = await asyncio.gather(*(bridge.events.send(b) for b in bodies))
    assert [d.status for d in deliveries] == [200] * len(bodies)
    return channels


def asked_since(slack: FakeSlack, before: int) -> Counter[str | None]:
    return Counter(c.token for c in slack.calls[before:] if c.method == "auth.test")


def answered_in(slack: FakeSlack, channels: list[str]) -> dict[str, str | None]:
    """Channel -> the token its answer was posted with."""
    wanted = set(channels)
    posts = slack.calls_to("chat.postMessage")
    return {c.args["channel"]: c.token for c in posts if c.args.get("channel") in wanted}


async def test_a_first_burst_across_workspaces_asks_auth_test_once_per_installation(
    bridge: OAuthBridge,
) -> None:
    tokens = {ws.team_id: await bridge.install(ws) for ws in (ACME, GLOBEX, GRID)}
    before = len(bridge.slack.calls)
    where = [(ACME, ACME.team_id), (GLOBEX, GLOBEX.team_id), (GRID, GRID_TEAM)]
    channels = await burst(bridge, where, per=20)
    # 60 events at once in a fresh process: each installation's token is checked once.
    assert asked_since(bridge.slack, before) == Counter(tokens.values())
    # Every event was authorized, each answered with its own workspace's token.
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, channels)) == 60, 30)
    by_token = Counter(answered_in(bridge.slack, channels).values())
    assert by_token == Counter(dict.fromkeys(tokens.values(), 20))


async def test_a_burst_with_a_dead_token_is_refused_after_one_ask_and_a_reinstall_asks_anew(
    bridge: OAuthBridge,
) -> None:
    old = await bridge.install(ACME)
    bridge.slack.workspaces.revoke(ACME)  # Slack revoked it; the bridge missed the event
    before = len(bridge.slack.calls)
    refused = await burst(bridge, [(ACME, ACME.team_id)], per=10)
    assert asked_since(bridge.slack, before) == Counter({old: 1})  # invalid_auth, shared
    new = await bridge.install(ACME)
    before = len(bridge.slack.calls)
    channels = await burst(bridge, [(ACME, ACME.team_id)], per=10)
    assert asked_since(bridge.slack, before) == Counter({new: 1})
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, channels)) == 10, 30)
    assert set(answered_in(bridge.slack, channels).values()) == {new}
    assert answered_in(bridge.slack, refused) == {}


async def test_after_an_uninstall_the_reinstalled_workspace_is_asked_once_again(
    bridge: OAuthBridge,
) -> None:
    old = await bridge.install(GLOBEX)
    before = len(bridge.slack.calls)
    await burst(bridge, [(GLOBEX, GLOBEX.team_id)], per=5)
    assert asked_since(bridge.slack, before) == Counter({old: 1})
    uninstalled = {"type": "app_uninstalled", "event_ts": bridge.slack.next_ts()}
    assert (await bridge.events.send(envelope(bridge.slack, uninstalled, GLOBEX))).status == 200
    bridge.slack.workspaces.revoke(GLOBEX)
    refused = await burst(bridge, [(GLOBEX, GLOBEX.team_id)], per=1)  # no installation now
    new = await bridge.install(GLOBEX)
    before = len(bridge.slack.calls)
    channels = await burst(bridge, [(GLOBEX, GLOBEX.team_id)], per=10)
    assert asked_since(bridge.slack, before) == Counter({new: 1})
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, channels)) == 10, 30)
    assert set(answered_in(bridge.slack, channels).values()) == {new}
    assert answered_in(bridge.slack, refused) == {}


async def test_a_refused_workspace_asks_auth_test_once_per_period_until_it_is_reinstalled(
    bridge: OAuthBridge, fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    old = await bridge.install(ACME)
    bridge.slack.workspaces.revoke(ACME)  # the bridge missed the event
    before = len(bridge.slack.calls)
    refused: list[str] = []
    for _ in range(5):  # one after another (concurrent ones always shared one ask)
        refused += await burst(bridge, [(ACME, ACME.team_id)], per=1)
    assert asked_since(bridge.slack, before) == Counter({old: 1})  # was one per event
    [adapter] = [a for a in bridge.runtime.adapters if isinstance(a, SlackAdapter)]
    assert adapter._authorize is not None
    adapter._authorize._clock = lambda: time.monotonic() + REFUSAL_SECONDS  # the period is over
    before = len(bridge.slack.calls)
    for _ in range(3):
        refused += await burst(bridge, [(ACME, ACME.team_id)], per=1)
    assert asked_since(bridge.slack, before) == Counter({old: 1})
    # Re-installed through another replica: this process is not told, but the new token in the
    # store ends the refusal at once.
    async with oauth_bridge(fake_slack, emulator, redis_client) as replica:
        new = await replica.install(ACME)
    before = len(bridge.slack.calls)
    channels: list[str] = []
    for _ in range(3):
        channels += await burst(bridge, [(ACME, ACME.team_id)], per=1)
    assert asked_since(bridge.slack, before) == Counter({new: 1})
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, channels)) == 3, 30)
    assert set(answered_in(bridge.slack, channels).values()) == {new}
    assert answered_in(bridge.slack, refused) == {}


def about(slack: FakeSlack, channels: set[str]) -> list[Any]:
    """Every call Slack got about these channels, failed ones included."""
    return [c for c in slack.calls if {c.args.get("channel"), c.args.get("channel_id")} & channels]


async def test_a_token_revoked_unheard_is_forgotten_at_its_first_refusal(
    bridge: OAuthBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack.app")
    tokens = {ws.team_id: await bridge.install(ws) for ws in (ACME, GLOBEX)}
    warm = await burst(bridge, [(ACME, ACME.team_id), (GLOBEX, GLOBEX.team_id)], per=1)
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, warm)) == 2, 30)
    # Slack revokes ACME's token; no tokens_revoked / app_uninstalled reaches the bridge.
    bridge.slack.workspaces.revoke(ACME)
    before = len(bridge.slack.calls)
    doomed = await burst(bridge, [(ACME, ACME.team_id)], per=1)
    # Accepted on the cached authorization (no auth.test); its answer is refused for good.
    await bridge.slack.wait_for(
        lambda: any(c.method == "chat.postMessage" for c in about(bridge.slack, set(doomed))), 30
    )
    refusals = {(c.token, c.response.get("error")) for c in about(bridge.slack, set(doomed))}
    assert refusals == {(tokens[ACME.team_id], "invalid_auth")}  # status, answer, apology
    assert asked_since(bridge.slack, before) == Counter()
    said = f"slack refused the bot token of workspace {ACME.team_id} (invalid_auth)"
    await bridge.slack.wait_for(lambda: any(said in r.getMessage() for r in caplog.records), 10)
    assert tokens[ACME.team_id] not in caplog.text  # no secrets in the line
    # Later events of that workspace: auth.test again (the burst's concurrent ones share it;
    # Bolt keeps no refusal, so a later one asks anew), then Bolt refuses them (200 with its
    # "installation no longer available" text, no listener runs: nothing stored or posted).
    before = len(bridge.slack.calls)
    refused = [
        user_message(bridge.slack, channel=f"D0R{i}", channel_type="im", team=ACME.team_id)
        for i in range(5)
    ]
    sent = [envelope(bridge.slack, m, ACME) for m in refused]
    deliveries = await asyncio.gather(*(bridge.events.send(b) for b in sent))
    assert {(d.status, "no longer available" in d.body) for d in deliveries} == {(200, True)}
    asked = asked_since(bridge.slack, before)
    assert set(asked) == {tokens[ACME.team_id]}
    assert asked[tokens[ACME.team_id]] <= len(sent)
    # The other workspace is unaffected (its cached authorization kept: no auth.test).
    before = len(bridge.slack.calls)
    channels = await burst(bridge, [(GLOBEX, GLOBEX.team_id)], per=3)
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, channels)) == 3, 30)
    assert set(answered_in(bridge.slack, channels).values()) == {tokens[GLOBEX.team_id]}
    assert asked_since(bridge.slack, before) == Counter()
    assert about(bridge.slack, {str(m["channel"]) for m in refused}) == []
    assert bridge.runtime.bridge is not None
    for m in refused:
        key = f"slack:{ACME.team_id}:{m['channel']}:{m['ts']}"
        assert await bridge.runtime.bridge.threads.get(key) is None


async def test_an_event_from_a_user_other_than_the_installer_reads_no_user_installation(
    bridge: OAuthBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await bridge.install(ACME)  # installed by U0INSTALLER, with bot scopes only
    per_user: list[str | None] = []
    find = RedisInstallationStore.async_find_installation

    async def counted(self: RedisInstallationStore, **where: Any) -> Any:
        if where.get("user_id") is not None:  # Bolt's look-up of the sender's own install
            per_user.append(where["user_id"])
        return await find(self, **where)

    monkeypatch.setattr(RedisInstallationStore, "async_find_installation", counted)
    channels = await burst(bridge, [(ACME, ACME.team_id)], per=5)  # from U0001
    await bridge.slack.wait_for(lambda: len(answered_in(bridge.slack, channels)) == 5, 30)
    assert set(answered_in(bridge.slack, channels).values()) == {token}
    # The app asks for no user scopes, so no user token exists: Bolt's bot_only reads the bot
    # once per event instead of the workspace's installation and then the sender's.
    assert per_user == []
