"""Plain message events skip Bolt's dispatch (adapters/slack/plain_events.py): same answers.

The same signed bodies go through a bridge (HTTP ingress and listeners, real Redis, the real
Bolt app against the fake Slack) twice: as it is, and with every body left to Bolt. Statuses,
bodies, headers, the messages handed to the core, the files downloaded and the accept signs
must be the same; only the count of Bolt dispatches differs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from adapters.slack import ingress
from adapters.slack.plain_events import plain_message
from bridge.errors import StorageUnavailable
from bridge.models import InboundMessage, SubmitResult
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_events import as_mention, envelope, sign, user_message
from tests.fixtures_slack import slack_bridge

KEPT_HEADERS = ("content-type", "retry-after")


@dataclass(frozen=True)
class Post:
    name: str
    raw: bytes
    retry_num: int | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Outcome:
    answers: list[tuple[str, int, str, dict[str, str]]] = field(default_factory=list)
    submitted: list[tuple[InboundMessage, bool]] = field(default_factory=list)
    signs: list[tuple[str, str, str]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    dispatched: int = 0  # Bolt requests built


def posts(slack: FakeSlack) -> list[Post]:
    """One body per behaviour Bolt gave plain message events, plus some it still handles."""

    def body(event: dict[str, Any], **changes: Any) -> bytes:
        return json.dumps({**envelope(slack, event), **changes}).encode()

    mention = user_message(slack, text=f"<@{slack.bot_user_id}> hello")
    note = slack.files.add("note.txt", content=b"lunch at noon")
    dm_file = user_message(slack, channel="D0001", channel_type="im", text="see")
    dm_file.update(subtype="file_share", files=[note])
    chatter_file = user_message(slack, text="fyi")
    chatter_file.update(subtype="file_share", files=[note])
    other_bot = user_message(slack, channel="D0001", channel_type="im", text="beep")
    other_bot.update(subtype="bot_message", bot_id="BOTHER")
    del other_bot["user"]
    own_bot = user_message(slack, channel="D0001", channel_type="im", text="my own")
    own_bot.update(subtype="bot_message", bot_id=slack.bot_id)
    del own_bot["user"]
    first = body(user_message(slack, channel="D0001", channel_type="im", text="question"))
    verification = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
    return [
        Post("a DM", first),
        Post("its retry", first, retry_num=1),
        Post("a mention", body(as_mention(slack, mention))),
        Post("its message twin", body(mention)),
        Post("chatter in a channel", body(user_message(slack, text="lunch?"))),
        Post("a reply in a thread", body(user_message(slack, thread_ts=mention["ts"]))),
        Post("a DM with a file", body(dm_file)),
        Post("chatter with a file", body(chatter_file)),
        Post("another bot", body(other_bot)),
        Post("the bot itself", body(user_message(slack, user=slack.bot_user_id, text="me"))),
        Post("the bot's own bot_id", body(own_bot)),
        Post("a join", body({**user_message(slack, text="joined"), "subtype": "channel_join"})),
        Post("no text", body(user_message(slack, channel="D0001", channel_type="im", text=" "))),
        Post("storage down", body(user_message(slack, channel="D0001", text="storage down"))),
        Post("a ts that is no time", body({**user_message(slack, text="x"), "ts": "soon"})),
        # Left to Bolt by plain_message: the same answers are expected all the same.
        Post("an edit", body({**user_message(slack), "subtype": "message_changed"})),
        Post("a user object", body({**user_message(slack), "user": {"id": "U0002"}})),
        Post("a top-level user", body(user_message(slack), user="U0003")),
        Post("a numeric channel", body({**user_message(slack), "channel": 7})),
        Post("a listed subtype", body({**user_message(slack), "subtype": ["x"]})),
        Post("another event", body({"type": "channel_created", "channel": {"id": "C9"}})),
        Post("url verification", verification),
        Post("Bolt's lazy-only call", first, headers=(("X-Slack-Bolt-Lazy-Only", "1"),)),
    ]  # fmt: skip


async def deliver(
    slack: FakeSlack,
    emulator: Any,
    redis: Any,
    monkeypatch: pytest.MonkeyPatch,
    bodies: list[Post],
) -> Outcome:
    await redis.flushall()
    slack.statuses.clear()
    slack.files.downloads.clear()
    outcome = Outcome()
    async with slack_bridge(slack, emulator, redis, roles={"http", "listeners"}) as b:
        core = b.runtime.bridge
        stored = core.submit

        async def submit(message: InboundMessage) -> SubmitResult:
            if message.text == "storage down":
                raise StorageUnavailable("redis is down")
            result = await stored(message)
            outcome.submitted.append((message, result.accepted))
            return result

        monkeypatch.setattr(core, "submit", submit)
        requests = ingress.bolt_request

        def counted(request: Any, raw: bytes) -> Any:
            outcome.dispatched += 1
            return requests(request, raw)

        with monkeypatch.context() as patch:
            patch.setattr(ingress, "bolt_request", counted)
            async with httpx.AsyncClient() as http:
                for post in bodies:
                    stamp = str(int(time.time()))
                    headers = {
                        "Content-Type": "application/json",
                        "X-Slack-Request-Timestamp": stamp,
                        "X-Slack-Signature": sign(slack.signing_secret, stamp, post.raw),
                    }
                    headers.update(post.headers)
                    if post.retry_num is not None:
                        headers["X-Slack-Retry-Num"] = str(post.retry_num)
                        headers["X-Slack-Retry-Reason"] = "http_timeout"
                    response = await http.post(b.events.url, content=post.raw, headers=headers)
                    kept = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
                    outcome.answers.append((post.name, response.status_code, response.text, kept))
        # Signs start right after their acks; each is in flight here until it is shown.
        await slack.wait_for(lambda: not core.outbound._signs)
    outcome.signs = list(slack.statuses)
    outcome.downloads = list(slack.files.downloads)
    return outcome


async def test_plain_message_events_get_the_answers_bolt_gave_them_without_its_dispatch(
    fake_slack: FakeSlack, emulator: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = posts(fake_slack)
    plain = await deliver(fake_slack, emulator, redis_client, monkeypatch, bodies)
    with monkeypatch.context() as only_bolt:
        only_bolt.setattr(ingress, "plain_message", lambda raw: None)
        bolt = await deliver(fake_slack, emulator, redis_client, monkeypatch, bodies)

    assert plain.answers == bolt.answers
    assert plain.submitted == bolt.submitted
    assert plain.signs == bolt.signs
    assert plain.downloads == bolt.downloads
    # What the comparison covers, as Bolt answered it.
    answers = {name: (status, text, headers) for name, status, text, headers in bolt.answers}
    assert answers["a DM"] == (200, "", {"content-type": "text/plain;charset=utf-8"})
    assert answers["storage down"][:2] == (503, "storage unavailable, retry later")
    assert answers["storage down"][2]["retry-after"] == "5"
    assert answers["a ts that is no time"][:2] == (400, "request not processed")
    assert answers["url verification"][:2] == (200, '{"challenge": "c"}')
    assert answers["a numeric channel"][:2] == (400, '{"error":"not a Slack payload (TypeError)"}')
    assert answers["Bolt's lazy-only call"][0] == 404
    assert {status for _, status, _, _ in bolt.answers} == {200, 400, 404, 503}
    texts = [message.text for message, _ in bolt.submitted]
    assert texts.count("question") == 2  # the retry is handed over again, and dropped there
    assert [accepted for message, accepted in bolt.submitted if message.text == "question"] == [
        True,
        False,
    ]
    assert "beep" in texts  # another bot's post
    assert "me" not in texts  # the bot's own posts
    assert "my own" not in texts
    assert any("lunch at noon" in text for text in texts)  # the DM's file, read
    assert bolt.downloads == [fake_slack.files.downloads[0]]  # not the chatter's
    assert bolt.signs
    # Only the bodies plain_message leaves to Bolt became Bolt's requests.
    left_to_bolt = [post for post in bodies if plain_message(post.raw) is None or post.headers]
    assert [p.name for p in left_to_bolt][:1] == ["an edit"]
    assert plain.dispatched == len(left_to_bolt)
    assert bolt.dispatched == len(bodies)


def plain(event: dict[str, Any], **envelope_changes: Any) -> dict[str, Any] | None:
    body = {
        "token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": "Ev1", "event_time": 1, "is_ext_shared_channel": False,
        "authorizations": [{"enterprise_id": None, "team_id": "T1", "user_id": "UBOT",
                            "is_bot": True, "is_enterprise_install": False}],
        "event": event, **envelope_changes,
    }  # fmt: skip
    return plain_message(json.dumps(body).encode())


MESSAGE = {"type": "message", "user": "U1", "text": "hi", "ts": "1.2", "channel": "C1"}


def test_plain_messages_and_mentions_in_slacks_envelope_are_taken() -> None:
    assert plain(MESSAGE) is not None
    assert plain({**MESSAGE, "type": "app_mention"}) is not None
    assert plain({**MESSAGE, "subtype": "file_share", "files": [{"id": "F1"}]}) is not None
    assert plain({**MESSAGE, "user": "UBOT"}) is not None  # to_event ignores the bot, as Bolt
    assert plain(MESSAGE, authorizations=None) is not None


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        ({**MESSAGE, "type": "reaction_added"}, {}),
        ({**MESSAGE, "subtype": "message_changed"}, {}),
        ({**MESSAGE, "subtype": "message_deleted"}, {}),
        ({**MESSAGE, "subtype": 3}, {}),
        ({**MESSAGE, "type": ["message"]}, {}),
        ({**MESSAGE, "user": {"id": "U1"}}, {}),
        ({**MESSAGE, "channel": {"id": "C1"}}, {}),
        ({**MESSAGE, "team": 1}, {}),
        ({**MESSAGE, "enterprise": True}, {}),
        ({**MESSAGE, "user_id": "U2"}, {}),
        ({**MESSAGE, "message": {"user": "U2"}}, {}),
        ({**MESSAGE, "assistant_thread": {"channel_id": "D1"}}, {}),
        (MESSAGE, {"type": "url_verification"}),
        (MESSAGE, {"user": "U2"}),
        (MESSAGE, {"team": {"id": "T1"}}),
        (MESSAGE, {"team_id": None}),
        (MESSAGE, {"authorizations": "T1"}),
        (MESSAGE, {"authorizations": [{"enterprise": 1}]}),
        (MESSAGE, {"authorizations": [{"team_id": {"id": "T1"}}]}),
        ("not an object", {}),
    ],
)
def test_every_other_shape_is_left_to_bolt(event: Any, changes: dict[str, Any]) -> None:
    assert plain(event, **changes) is None


@pytest.mark.parametrize(
    "raw", [b"", b"[1]", b" {}", b'{"type": "event_callback"', b'{"a": "\xff"}']
)
def test_bodies_that_are_not_json_objects_are_left_to_bolt(raw: bytes) -> None:
    assert plain_message(raw) is None
