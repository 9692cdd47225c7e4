"""Fuzz every POST route (signed and unsigned, random and mutated bodies) and the GET routes'
paths and queries: never a 5xx.

To cover a new POST route, add a `Target` to `bridge_targets` (or `emulator_targets`): a valid
sample body, its content type and, if the route verifies signatures, a signer. A GET route: a
template in BRIDGE_GETS / EMULATOR_GETS (`@` is replaced by each odd segment).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from adapters.chatwoot import ChatwootAdapter
from adapters.chatwoot.auth import DELIVERY_HEADER
from adapters.chatwoot.auth import SIGNATURE_HEADER as CW_SIGNATURE
from adapters.chatwoot.auth import TIMESTAMP_HEADER as CW_TIMESTAMP
from adapters.chatwoot.auth import sign as chatwoot_sign
from adapters.desk import create_adapter as create_desk_adapter
from adapters.desk.signing import signed_headers as desk_headers
from adapters.slack import create_adapter as create_slack_adapter
from adapters.slack.settings import SlackSettings
from adapters.slack.signing import sign as slack_sign
from adapters.web import create_adapter as create_web_adapter
from adapters.zendesk import ZendeskAdapter
from adapters.zendesk.signing import SIGNATURE_HEADER as ZD_SIGNATURE
from adapters.zendesk.signing import TIMESTAMP_HEADER as ZD_TIMESTAMP
from adapters.zendesk.signing import sign as zendesk_sign
from bridge import emulator as emulator_module
from bridge.config import FileConfig, Routing
from bridge.http import HttpServer, create_app
from bridge.metrics import Metrics
from bridge.runtime import BridgeRuntime
from tests.fakes.chatwoot import FakeChatwoot
from tests.fakes.desk import FakeDesk
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import envelope, slash_command, user_message
from tests.fakes.zendesk import FakeZendesk
from tests.fixtures_desk import (
    DESK_SECRET,
    bridge_runtime,
    bridge_settings,
    desk_event,
    web_settings,
)
from tests.fixtures_helpdesk import CHATWOOT_TOKEN, FAST_RETRY, chatwoot_config, zendesk_config
from tests.fixtures_slack import slack_settings
from tests.fuzzing import FORM, ODD_SEGMENTS, Case, Target, cases

pytestmark = pytest.mark.slow

SEED = 20261205
CASES_PER_TARGET = 130
MIN_CASES = 2000


def slack_signer(secret: str) -> Any:
    def sign(raw: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_sign(secret, stamp, raw),
        }

    return sign


def desk_signer(raw: bytes) -> dict[str, str]:
    headers = desk_headers(DESK_SECRET, int(time.time()), raw)
    del headers["Content-Type"]
    return headers


def zendesk_signer(secret: str) -> Any:
    def sign(raw: bytes) -> dict[str, str]:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {ZD_TIMESTAMP: stamp, ZD_SIGNATURE: zendesk_sign(secret, stamp, raw)}

    return sign


def chatwoot_signer(secret: str) -> Any:
    def sign(raw: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {CW_TIMESTAMP: stamp, CW_SIGNATURE: chatwoot_sign(secret, stamp, raw)}

    return sign


def api_key(raw: bytes) -> dict[str, str]:
    return {
        "X-Api-Key": emulator_module.DEFAULT_API_KEY,
        "X-Org-Id": emulator_module.DEFAULT_ORG_ID,
    }


def zendesk_sample() -> dict[str, Any]:
    return {
        "account_id": 1,
        "detail": {"id": "7", "requester_id": "11", "assignee_id": None, "status": "OPEN",
                   "subject": "s", "description": "d", "via": {"channel": "web"}},
        "event": {"comment": {"id": 99, "body": "hello", "is_public": True,
                              "author": {"id": 11, "is_staff": False, "name": "Ann"}}},
        "id": "e-1", "subject": "zen:ticket:7", "time": "2026-12-05T10:00:00Z",
        "type": "zen:event-type:ticket.comment_added", "zendesk_event_version": "2022-11-06",
    }  # fmt: skip


def chatwoot_sample() -> dict[str, Any]:
    conversation = {"id": 3, "inbox_id": 1, "status": "pending", "messages": [],
                    "meta": {"sender": {"id": 5, "name": "C", "type": "contact"}, "assignee": None},
                    "account": {"id": 1, "name": "acme"}}  # fmt: skip
    return {
        "event": "message_created", "account": {"id": 1, "name": "acme"}, "content": "hello",
        "content_type": "text", "conversation": conversation, "id": 42, "inbox": {"id": 1},
        "message_type": "incoming", "private": False,
        "sender": {"id": 5, "name": "C", "type": "contact"}, "created_at": 1,
    }  # fmt: skip


def bridge_targets(slack: FakeSlack, zendesk: FakeZendesk, chatwoot: FakeChatwoot) -> list[Target]:
    sign = slack_signer(slack.signing_secret)
    event = user_message(slack, channel="D1", channel_type="im", text="hi", record=False)
    action = {
        "type": "block_actions", "user": {"id": "U0001"}, "team": {"id": slack.team_id},
        "channel": {"id": "C0001"}, "message": {"ts": "1.1"}, "trigger_id": "t",
        "actions": [{"action_id": "feedback", "value": "up", "type": "button"}],
    }  # fmt: skip
    playground = "/playground/api/threads"
    return [
        Target("slack event", "/slack/events", envelope(slack, event), sign=sign),
        Target("slack command", "/slack/events", slash_command(slack, "ask hi"), FORM, sign, True),
        Target("slack action", "/slack/events", action, FORM, sign, form_payload=True),
        Target("desk", "/desk/webhook", desk_event(), sign=desk_signer),
        Target(
            "zendesk",
            "/zendesk/webhook",
            zendesk_sample(),
            sign=zendesk_signer(zendesk.webhook_secret),
        ),
        Target(
            "chatwoot",
            f"/chatwoot/webhook/{CHATWOOT_TOKEN}",
            chatwoot_sample(),
            sign=chatwoot_signer(chatwoot.bot_secret),
            extra_headers={DELIVERY_HEADER: "d"},
        ),
        Target("playground create", playground, {}),
        Target(
            "playground message",
            f"{playground}/THREAD/messages",
            {"client_id": "c-0001", "text": "hi"},
        ),
        Target(
            "playground command",
            f"{playground}/THREAD/commands",
            {"client_id": "c-0002", "command": "resolve"},
        ),
        Target("web login", "/web/login", {"token": "nope", "next": "/operator"}, FORM, form=True),
        Target("web logout", "/web/logout", {}),
    ]


def emulator_targets() -> list[Target]:
    v1 = "/emulator/v1"
    return [
        Target(
            "emulator create",
            f"{v1}/conversations",
            {"data": {"a": 1}, "source": "s"},
            sign=api_key,
        ),
        Target(
            "emulator messages",
            f"{v1}/conversations/CONV/messages",
            [{"content": "hi", "role": "user"}],
            sign=api_key,
        ),
        Target(
            "emulator chat",
            f"{v1}/conversations/CONV/chat?agent=parrot&stream=false",
            {"messages": [{"content": "hi", "role": "user"}]},
            sign=api_key,
        ),
        Target("emulator tags", f"{v1}/tags", {"name": "t", "color": "red"}, sign=api_key),
        Target("emulator validate", f"{v1}/users/validate-me", {}, sign=api_key),
        Target("emulator faults", "/emulator/_emulator/faults", {"scope": "chat", "fail_next": 0}),
        Target("emulator reset", "/emulator/_emulator/reset", {}),
    ]


BRIDGE_GETS = [
    "/playground/api/threads/THREAD?after=@", "/playground/api/threads/@", "/operator/threads/@",
    "/operator?@", "/web/static/@", "/web/login?next=@", "/playground?@", "/readyz?@",
    "/slack/events?@",
]  # fmt: skip
EMULATOR_GETS = [
    "/emulator/v1/conversations/@", "/emulator/v1/conversations/me?limit=@&offset=@",
    "/emulator/v1/conversations/CONV/messages?@", "/emulator/v1/runs/@",
    "/emulator/v1/tags/@/conversations", "/emulator/v1/agents/validate?agent=@",
    "/emulator/_emulator/state?@",
]  # fmt: skip


async def raw_get(base: httpx.URL, target: str, headers: dict[str, str]) -> int:
    """GET `target` exactly as written (httpx refuses or normalises some odd targets)."""
    reader, writer = await asyncio.open_connection(base.host, base.port)
    head = {"Host": f"{base.host}:{base.port}", "Connection": "close", **headers}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    writer.write(f"GET {target} HTTP/1.1\r\n{lines}\r\n".encode("latin-1"))
    status_line = await asyncio.wait_for(reader.readline(), timeout=30)
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def query(
    http: httpx.AsyncClient, templates: list[str], paths: dict[str, str], headers: dict[str, str]
) -> tuple[Counter[str], list[str]]:
    """Every GET template with every odd segment: never a 5xx."""
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    for template in templates:
        for placeholder, value in paths.items():
            template = template.replace(placeholder, value)
        for segment in ODD_SEGMENTS:
            url = template.replace("@", segment)
            status = await raw_get(http.base_url, url, headers)
            statuses[f"{status // 100}xx"] += 1
            if status >= 500:
                failures.append(f"GET {url[:100]}: {status}")
    return statuses, failures


async def drive(http: httpx.AsyncClient, case: Case, path: str) -> int:
    headers = dict(case.target.extra_headers)
    if case.content_type:
        headers["Content-Type"] = case.content_type
    if case.signed and case.target.sign is not None:
        headers.update(case.target.sign(case.body))
    method = "PUT" if path.endswith("/_emulator/faults") else "POST"
    response = await http.request(method, path, content=case.body, headers=headers)
    return response.status_code


async def fuzz(
    http: httpx.AsyncClient, targets: list[Target], rng: random.Random, paths: dict[str, str]
) -> tuple[Counter[str], list[str]]:
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    for target in targets:
        path = target.path
        for placeholder, value in paths.items():
            path = path.replace(placeholder, value)
        for case in cases(rng, target, CASES_PER_TARGET):
            status = await drive(http, case, path)
            statuses[f"{status // 100}xx"] += 1
            if status >= 500:
                failures.append(
                    f"{target.name} {case.how} signed={case.signed}: {status} {case.body[:80]!r}"
                )
    return statuses, failures


@pytest.fixture
async def everything(
    tmp_path: Path,
    redis_client: aioredis.Redis,
    emulator: Any,
    fake_slack: FakeSlack,
    fake_desk: FakeDesk,
    zendesk: FakeZendesk,
    chatwoot: FakeChatwoot,
) -> AsyncIterator[BridgeRuntime]:
    """One bridge with every adapter that has HTTP routes, on the test emulator."""
    slack = slack_settings(fake_slack).platform(SlackSettings)
    settings = bridge_settings(
        tmp_path,
        emulator,
        desk_callback_url=fake_desk.url,
        platforms=[slack],
        file=FileConfig(routing=Routing(default_agent="parrot")),
    )
    adapters = [
        create_slack_adapter(settings, redis_client),
        create_desk_adapter(settings),
        create_web_adapter(settings, redis_client, web_settings()),
        ZendeskAdapter(zendesk_config(zendesk), retry=FAST_RETRY),
        ChatwootAdapter(chatwoot_config(chatwoot), retry=FAST_RETRY),
    ]
    async with bridge_runtime(settings, redis_client, emulator, adapters) as rt:
        yield rt


async def test_fuzzing_every_post_route_gives_no_5xx_and_leaves_the_bridge_healthy(
    everything: BridgeRuntime,
    fake_slack: FakeSlack,
    zendesk: FakeZendesk,
    chatwoot: FakeChatwoot,
    redis_client: aioredis.Redis,
) -> None:
    rng = random.Random(SEED)
    assert everything.http_url is not None
    async with httpx.AsyncClient(base_url=everything.http_url, timeout=30) as http:
        created = await http.post("/playground/api/threads", json={})
        assert created.status_code == 201, created.text
        targets = bridge_targets(fake_slack, zendesk, chatwoot)
        paths = {"THREAD": created.json()["id"]}
        statuses, failures = await fuzz(http, targets, rng, paths)
        got, failed = await query(http, BRIDGE_GETS, paths, {})
        statuses.update(got)
        failures.extend(failed)
        total = sum(statuses.values())

        emulated = await emulator_statuses(rng)
        ready = await http.get("/readyz")
    statuses.update(emulated[0])
    failures.extend(emulated[1])
    assert failures == [], f"{len(failures)} responses >= 500 of {total}: {failures[:10]}"
    assert sum(statuses.values()) >= MIN_CASES, statuses
    assert statuses["2xx"] > 0, statuses
    assert statuses["4xx"] > 0, statuses
    assert ready.status_code == 200, ready.text
    # Still answering: a normal DM gets its reply.
    dm = user_message(fake_slack, channel="D0AFTER", channel_type="im", text="still there?")
    sign = slack_signer(fake_slack.signing_secret)
    raw = Target("", "", envelope(fake_slack, dm)).encode(envelope(fake_slack, dm))
    async with httpx.AsyncClient(base_url=everything.http_url, timeout=30) as http:
        delivered = await http.post(
            "/slack/events", content=raw, headers={"Content-Type": "application/json", **sign(raw)}
        )
    assert delivered.status_code == 200, delivered.text
    await fake_slack.wait_for(
        lambda: any(m.get("thread_ts") == dm["ts"] for m in fake_slack.posted("D0AFTER")),
        timeout=30,
    )


async def emulator_statuses(rng: random.Random) -> tuple[Counter[str], list[str]]:
    """The emulator as `run` mounts it, but with its test controls on so they are fuzzed too."""

    async def ready() -> dict[str, str]:
        return {}

    app = create_app(
        metrics=Metrics(),
        readiness=ready,
        mounts={"/emulator": emulator_module.create_app(admin=True)},
    )
    server = HttpServer("127.0.0.1", 0)
    await server.start(app)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            conversation = await http.post(
                "/emulator/v1/conversations", json={}, headers=api_key(b"")
            )
            assert conversation.status_code == 200, conversation.text
            paths = {"CONV": conversation.json()["id"]}
            statuses, failures = await fuzz(http, emulator_targets(), rng, paths)
            got, failed = await query(http, EMULATOR_GETS, paths, api_key(b""))
            statuses.update(got)
            return statuses, failures + failed
    finally:
        await server.stop()


async def test_the_fuzz_corpus_is_deterministic(fake_slack: FakeSlack) -> None:
    targets = bridge_targets(
        fake_slack, FakeZendesk(webhook_secret="z"), FakeChatwoot(bot_secret="c")
    )
    first = [c.body for t in targets for c in cases(random.Random(SEED), t, 20)]
    again = [c.body for t in targets for c in cases(random.Random(SEED), t, 20)]
    assert first == again
