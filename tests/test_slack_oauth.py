"""OAuth mode with real Bolt: installs into several fake workspaces, tokens per workspace."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.slack import SlackAdapter
from adapters.slack.settings import DEFAULT_SCOPES, SlackOAuthSettings
from bridge.check import cmd_check
from bridge.config import Settings, Staff
from bridge.errors import ConfigError
from bridge.runtime import BridgeRuntime
from tests.fakes.slack import FakeSlack, Workspace
from tests.fakes.slack_events import EventSender, as_mention, envelope, user_message
from tests.fixtures_slack import e2e_settings
from tests.fuzzing import ODD_SEGMENTS
from tests.test_fuzz_routes import query

pytestmark = pytest.mark.slow
MANIFEST = Path(__file__).parent.parent / "deploy" / "slack-app-manifest.yaml"

ACME = Workspace("T0ACME", "acme", "UACMEBOT", "BACME")
GLOBEX = Workspace("T0GLOBEX", "globex", "UGLOBEXBOT", "BGLOBEX")
# An Enterprise Grid org-wide install: one token for every workspace of enterprise E0GRID.
GRID = Workspace("T0GRIDHQ", "initech", "UGRIDBOT", "BGRID", enterprise_id="E0GRID", org_wide=True)
GRID_TEAM = "T0GRIDSALES"  # a workspace of that org, never installed into on its own


def oauth_settings(slack: FakeSlack, **overrides: Any) -> SlackOAuthSettings:
    values: dict[str, Any] = {
        "client_id": slack.workspaces.client_id,
        "client_secret": slack.workspaces.client_secret,
        "redirect_uri": "http://127.0.0.1/slack/oauth_redirect",
    }
    values.update(overrides)
    return SlackOAuthSettings(_env_file=None, **values)


@dataclass
class OAuthBridge:
    runtime: BridgeRuntime
    slack: FakeSlack
    events: EventSender

    async def install(self, workspace: Workspace) -> str:
        """Click "Add to Slack", approve, follow the redirect: the token Slack handed out."""
        async with httpx.AsyncClient(base_url=self.runtime.http_url or "") as browser:
            page = await browser.get("/slack/install")
            assert page.status_code == 200
            state = re.search(r"state=([\w.-]+)", page.text)
            assert state is not None, page.text
            cookie = page.headers["set-cookie"].split(";")[0]  # Secure: not resent over http
            code = self.slack.workspaces.grant(workspace)
            done = await browser.get(
                "/slack/oauth_redirect",
                params={"code": code, "state": state[1]},
                headers={"Cookie": cookie},
            )
            assert done.status_code == 200, done.text
        return self.slack.workspaces.token_of(workspace)

    async def mention(self, workspace: Workspace, team: str, channel: str, text: str) -> str:
        message = user_message(
            self.slack, channel=channel, team=team, text=f"<@{workspace.bot_user_id}> {text}"
        )
        for event in (message, as_mention(self.slack, message)):
            delivery = await self.events.send(envelope(self.slack, event, workspace))
            assert delivery.status == 200, delivery.body
        return str(message["ts"])

    def replies(self, channel: str, ts: str) -> list[Any]:
        return [
            c
            for c in self.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == channel and c.args.get("thread_ts") == ts
        ]


@asynccontextmanager
async def oauth_bridge(
    slack: FakeSlack,
    engage: Any,
    redis: Any,
    staff: Staff | None = None,
    socket_mode: bool = False,
    **oauth: Any,
) -> AsyncIterator[OAuthBridge]:
    settings = e2e_settings(slack, engage, socket_mode=socket_mode, credentials={"bot_token": None})
    if staff is not None:
        settings.file.staff = staff
    adapter = SlackAdapter(settings, redis, oauth=oauth_settings(slack, **oauth))
    async with BridgeRuntime(settings, adapters=[adapter], redis=redis) as runtime:
        sender = EventSender(f"{runtime.http_url}/slack/events", slack.signing_secret)
        try:
            if socket_mode:
                await asyncio.wait_for(slack.socket_connected.wait(), timeout=10)
            yield OAuthBridge(runtime, slack, sender)
        finally:
            await sender.aclose()


@pytest.fixture
async def bridge(fake_slack: FakeSlack, emulator: Any, redis_client: Any) -> Any:
    async with oauth_bridge(fake_slack, emulator, redis_client) as running:
        yield running


async def test_two_workspaces_and_an_org_wide_install_each_answer_with_their_own_token(
    bridge: OAuthBridge,
) -> None:
    tokens = {ws.team_id: await bridge.install(ws) for ws in (ACME, GLOBEX, GRID)}
    where = [(ACME, ACME.team_id, "C0ACME"), (GLOBEX, GLOBEX.team_id, "C0GLOBEX")]
    where.append((GRID, GRID_TEAM, "C0GRID"))
    asked = [(ws, ch, await bridge.mention(ws, team, ch, "hi?")) for ws, team, ch in where]
    for workspace, channel, ts in asked:
        await bridge.slack.wait_for(lambda c=channel, t=ts: len(bridge.replies(c, t)) == 1)
        [reply] = bridge.replies(channel, ts)
        assert reply.token == tokens[workspace.team_id]
        # The mention was of this installation's bot user, stripped before the agent saw it.
        assert reply.args["text"] == "You said: hi?"
    assert len(set(tokens.values())) == 3


async def test_the_bot_ignores_its_own_posts_in_each_workspace(bridge: OAuthBridge) -> None:
    await bridge.install(GLOBEX)
    own = user_message(bridge.slack, channel="C0GLOBEX", team=GLOBEX.team_id, text="mine")
    own["user"], own["bot_id"] = GLOBEX.bot_user_id, GLOBEX.bot_id
    assert (await bridge.events.send(envelope(bridge.slack, own, GLOBEX))).status == 200
    ts = await bridge.mention(GLOBEX, GLOBEX.team_id, "C0GLOBEX", "hello")
    await bridge.slack.wait_for(lambda: len(bridge.replies("C0GLOBEX", ts)) == 1)
    assert bridge.replies("C0GLOBEX", own["ts"]) == []


async def test_uninstall_removes_the_installation_and_later_events_are_ignored(
    bridge: OAuthBridge, caplog: pytest.LogCaptureFixture
) -> None:
    await bridge.install(ACME)
    await bridge.install(GLOBEX)
    uninstalled = {"type": "app_uninstalled", "event_ts": bridge.slack.next_ts()}
    assert (await bridge.events.send(envelope(bridge.slack, uninstalled, ACME))).status == 200
    bridge.slack.workspaces.revoke(ACME)
    with caplog.at_level(logging.WARNING, logger="adapters.slack.installations"):
        ignored = await bridge.mention(ACME, ACME.team_id, "C0ACME", "still there?")
    assert any("no installation" in r.getMessage() for r in caplog.records)
    answered = await bridge.mention(GLOBEX, GLOBEX.team_id, "C0GLOBEX", "and you?")
    await bridge.slack.wait_for(lambda: len(bridge.replies("C0GLOBEX", answered)) == 1)
    assert bridge.replies("C0ACME", ignored) == []
    assert bridge.runtime.bridge is not None
    assert await bridge.runtime.bridge.threads.get(f"slack:T0ACME:C0ACME:{ignored}") is None


async def test_a_revoked_bot_token_removes_the_installation(bridge: OAuthBridge) -> None:
    await bridge.install(ACME)
    revoked = {
        "type": "tokens_revoked",
        "tokens": {"bot": [ACME.bot_user_id]},
        "event_ts": bridge.slack.next_ts(),
    }
    assert (await bridge.events.send(envelope(bridge.slack, revoked, ACME))).status == 200
    ts = await bridge.mention(ACME, ACME.team_id, "C0ACME", "hello?")
    assert bridge.replies("C0ACME", ts) == []


async def test_a_redirect_with_a_forged_state_installs_nothing(bridge: OAuthBridge) -> None:
    async with httpx.AsyncClient(base_url=bridge.runtime.http_url or "") as browser:
        code = bridge.slack.workspaces.grant(ACME)
        done = await browser.get(
            "/slack/oauth_redirect",
            params={"code": code, "state": "forged"},
            headers={"Cookie": "slack-app-oauth-state=forged"},
        )
    assert done.status_code >= 400
    assert bridge.slack.calls_to("oauth.v2.access") == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"client_secret": "a-wrong-client-secret"}, "bad_client_secret"),
        ({"client_secret": "short"}, "SLACK_CLIENT_SECRET is 5 characters"),
        ({"redirect_uri": "http://bridge.example.com/slack/oauth_redirect"}, "must be https"),
        ({"redirect_uri": None}, "no redirect URL"),
        ({"scopes": ["commands"]}, "lacks app_mentions:read, chat:write"),
    ],
)
async def test_start_reports_oauth_settings_that_cannot_work(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any, overrides: dict[str, Any], problem: str
) -> None:
    settings = e2e_settings(
        fake_slack, emulator, socket_mode=False, credentials={"bot_token": None}
    )
    adapter = SlackAdapter(settings, redis_client, oauth=oauth_settings(fake_slack, **overrides))
    with pytest.raises(ConfigError, match=problem):
        await adapter.start()


def test_a_bot_token_and_oauth_together_are_refused(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    settings = e2e_settings(fake_slack, emulator, socket_mode=False)
    with pytest.raises(ConfigError, match="not both"):
        SlackAdapter(settings, redis_client, oauth=oauth_settings(fake_slack))


async def test_check_validates_the_oauth_settings(
    fake_slack: FakeSlack,
    emulator: Any,
    redis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "ENGAGE_BRIDGE_REDIS_URL": redis_server.url,
        "ENGAGE_SMARTER_API_URL": emulator.url,
        "ENGAGE_SMARTER_API_KEY": emulator.api_key,
        "ENGAGE_SMARTER_ORG_ID": emulator.org_id,
        "ENGAGE_BRIDGE_WEB_ENABLED": "false",
        "ENGAGE_BRIDGE_SLACK_API_URL": fake_slack.api_url,
        "SLACK_SIGNING_SECRET": fake_slack.signing_secret + "-long-enough",
        "SLACK_CLIENT_ID": fake_slack.workspaces.client_id,
        "SLACK_CLIENT_SECRET": fake_slack.workspaces.client_secret,
        "SLACK_REDIRECT_URI": "http://bridge.example.com/slack/oauth_redirect",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert await cmd_check(Settings.load(), argparse.Namespace(), out) == 1
    assert "FAIL platform slack:" in out.getvalue()
    assert "SLACK_REDIRECT_URI must be https" in out.getvalue()
    monkeypatch.setenv("SLACK_REDIRECT_URI", "https://bridge.example.com/slack/oauth_redirect")
    out = io.StringIO()
    assert await cmd_check(Settings.load(), argparse.Namespace(), out) == 0, out.getvalue()
    assert "OK   platform slack: credentials accepted" in out.getvalue()


def test_an_install_asks_for_exactly_the_manifests_bot_scopes() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert sorted(DEFAULT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["oauth_config"]["redirect_urls"] == [
        "https://bridge.example.com/slack/oauth_redirect"
    ]


async def test_staff_of_one_workspace_hand_over_only_there(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    staff = Staff(slack_workspace_user_ids={GLOBEX.team_id: ["U0LEAD"]})
    async with oauth_bridge(fake_slack, emulator, redis_client, staff=staff) as b:
        assert b.runtime.bridge is not None
        threads = b.runtime.bridge.threads
        keys = {}
        for workspace, channel in ((ACME, "C0ACME"), (GLOBEX, "C0GLOBEX")):
            await b.install(workspace)
            root = await b.mention(workspace, workspace.team_id, channel, "help?")
            await b.slack.wait_for(lambda c=channel, t=root: len(b.replies(c, t)) == 1)
            lead = user_message(
                b.slack, channel=channel, team=workspace.team_id, user="U0LEAD",
                text="I will take this", thread_ts=root,
            )  # fmt: skip
            assert (await b.events.send(envelope(b.slack, lead, workspace))).status == 200
            keys[workspace.team_id] = f"slack:{workspace.team_id}:{channel}:{root}"
        # In Acme the lead is a customer like any other: answered, the thread stays with the bot.
        acme_root = keys[ACME.team_id].rsplit(":", 1)[1]
        await b.slack.wait_for(lambda: len(b.replies("C0ACME", acme_root)) == 2)
        assert "You said: I will take this" in b.replies("C0ACME", acme_root)[1].args["text"]
        assert await status_of(threads, keys[ACME.team_id]) == "bot"
        # In Globex the lead is staff: the thread is handed over to a human.
        async with asyncio.timeout(10):
            while await status_of(threads, keys[GLOBEX.team_id]) != "human":
                await asyncio.sleep(0.02)


async def status_of(threads: Any, key: str) -> str:
    record = await threads.get(key)
    assert record is not None
    return str(record.status)


async def test_socket_mode_events_are_authorised_per_installation_too(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any
) -> None:
    async with oauth_bridge(fake_slack, emulator, redis_client, socket_mode=True) as b:
        token = await b.install(GLOBEX)
        message = user_message(
            b.slack, channel="C0GLOBEX", team=GLOBEX.team_id, text=f"<@{GLOBEX.bot_user_id}> hi"
        )
        pushed = await b.slack.push(envelope(b.slack, message, GLOBEX))
        await asyncio.wait_for(pushed.acked.wait(), 10)
        await b.slack.wait_for(lambda: len(b.replies("C0GLOBEX", message["ts"])) == 1)
        [reply] = b.replies("C0GLOBEX", message["ts"])
    assert reply.token == token


OAUTH_GETS = [
    "/slack/install?@", "/slack/oauth_redirect?@", "/slack/oauth_redirect?code=@&state=@",
    "/slack/oauth_redirect?error=@&state=@", "/slack/install/@",
]  # fmt: skip


async def test_odd_install_and_redirect_requests_never_give_a_5xx(bridge: OAuthBridge) -> None:
    async with httpx.AsyncClient(base_url=bridge.runtime.http_url or "") as http:
        statuses, failures = await query(http, OAUTH_GETS, {}, {})
        cookie = {"Cookie": "slack-app-oauth-state=@"}
        with_cookie, failed = await query(http, OAUTH_GETS[1:3], {}, cookie)
    assert failures + failed == []
    assert statuses["4xx"] > 0, statuses
    assert sum(statuses.values()) + sum(with_cookie.values()) >= 5 * len(ODD_SEGMENTS)
    assert bridge.slack.calls_to("oauth.v2.access") == []  # no odd request got as far as Slack


async def test_the_install_pages_take_no_posts_so_no_unsigned_body_reaches_bolt(
    bridge: OAuthBridge,
) -> None:
    # Bolt does not verify signatures itself (the guard on /slack/events does): its OAuth pages
    # must not dispatch a POSTed event.
    event = user_message(bridge.slack, channel="C0001", text=f"<@{bridge.slack.bot_user_id}> hi")
    raw = json.dumps(envelope(bridge.slack, event)).encode()
    async with httpx.AsyncClient(base_url=bridge.runtime.http_url or "") as http:
        for path in ("/slack/install", "/slack/oauth_redirect"):
            response = await http.post(
                path, content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 405
    assert await bridge.runtime.bridge.queue_depth() == 0
