"""Replies and status against the fake Slack, through the real AsyncWebClient and real Redis."""

from __future__ import annotations

import re
import time

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.client_reqrep import ConnectionKey
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.state import RetryState

from adapters.slack.clients import Clients, ConnectionRetry
from adapters.slack.format import MARKDOWN_TEXT_LIMIT
from adapters.slack.outbound import STATUS_REACTION, SlackSender, build_client
from bridge import backoff
from bridge.errors import PermanentPlatformError, PlatformError
from bridge.feedback import AnsweredRun, AnswerRef, Answers
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.store import Store, keys
from tests.fakes.slack import FakeSlack


def thread(fake: FakeSlack, channel: str = "C0001") -> ThreadKey:
    root = fake.next_ts()
    fake.add_user_message(channel, {"type": "message", "user": "U0001", "text": "q", "ts": root})
    return ThreadKey("slack", fake.team_id, channel, root)


@pytest.fixture
def sender(fake_slack: FakeSlack, redis_client: aioredis.Redis) -> SlackSender:
    client = build_client(fake_slack.bot_token, fake_slack.api_url)
    return SlackSender(client, redis_client)


async def test_reply_is_posted_in_the_thread_as_markdown_with_its_idempotency_key(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    ts = await sender.send(Reply(key, "**Hello** `there`", idempotency_key="msg-1"))
    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.args["thread_ts"] == key.thread
    assert call.args["markdown_text"] == "**Hello** `there`"
    assert "text" not in call.args
    assert call.args["metadata"] == {
        "event_type": "engage_reply",
        "event_payload": {"key": "msg-1", "part": 0, "parts": 1},
    }
    assert call.response["ts"] == ts


async def test_long_answer_with_code_arrives_complete_in_order_with_fences_intact(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    sections = []
    for i in range(12):
        sections.append(f"## Step {i}\n\n" + f"Explanation number {i}. " * 60)
        sections.append("```python\n" + "".join(f"x_{i}_{n} = {n}\n" for n in range(80)) + "```")
    text = "\n\n".join(sections)
    assert len(text) > 2 * MARKDOWN_TEXT_LIMIT
    await sender.send(Reply(key, text, idempotency_key="long"))
    posted = [m["markdown_text"] for m in fake_slack.posted("C0001")]
    assert len(posted) >= 3
    assert all(len(p) <= MARKDOWN_TEXT_LIMIT for p in posted)
    for part in posted:
        assert len(re.findall(r"^```", part, re.MULTILINE)) % 2 == 0
    assert "".join(posted).replace("\n", "") == text.replace("\n", "")
    assert all(m["thread_ts"] == key.thread for m in fake_slack.posted("C0001"))


async def test_broadcast_pings_in_agent_text_reach_slack_neutralised(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    await sender.send(
        Reply(key, "<!channel> <!here> <!everyone> <!subteam^S1> @here @channel", "p")
    )
    wire = fake_slack.calls_to("chat.postMessage")[0].args["markdown_text"]
    assert "<!" not in wire
    assert not re.search(r"@(here|channel|everyone)\b", wire)


async def test_the_same_reply_sent_twice_is_posted_once(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    reply = Reply(key, "once", idempotency_key="m-1")
    first = await sender.send(reply)
    second = await sender.send(reply)
    assert first == second
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_part_posted_before_a_crash_is_found_in_the_thread_not_posted_again(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    key = thread(fake_slack)
    reply = Reply(key, "answer", idempotency_key="m-2")
    ts = await sender.send(reply)
    store = "{" + str(key) + "}:slack:parts"
    # As if the process died after chat.postMessage, before recording the part (and with it,
    # the last part, the reply in the core's posted ledger) as posted.
    await redis_client.hdel(store, "m-2:0")
    await redis_client.hdel(keys.posted(key), "m-2")
    await redis_client.hset(store, "pending:m-2:0", "1")
    assert await sender.send(reply) == ts
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert fake_slack.calls_to("conversations.replies")


async def test_a_429_storm_delays_the_reply_but_loses_nothing(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    fake_slack.fail_next("chat.postMessage", 3, retry_after=1)
    started = time.monotonic()
    await sender.send(Reply(key, "patience", idempotency_key="m-3"))
    assert time.monotonic() - started >= 3
    assert [m["markdown_text"] for m in fake_slack.posted("C0001")] == ["patience"]


async def test_per_channel_rate_limit_keeps_parts_in_order(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    fake_slack.rate_limit_per_channel = True
    text = "\n\n".join(f"part {i} " + "x" * 7000 for i in range(3))
    await sender.send(Reply(key, text, idempotency_key="m-4"))
    posted = [m["markdown_text"] for m in fake_slack.posted("C0001")]
    assert [p.split()[1] for p in posted] == ["0", "1", "2"]
    assert any(c.status == 429 for c in fake_slack.calls)


async def test_missing_channel_is_a_permanent_error(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    fake_slack.missing_channels.add("C0GONE")
    key = ThreadKey("slack", fake_slack.team_id, "C0GONE", "1.000001")
    with pytest.raises(PermanentPlatformError, match="channel_not_found"):
        await sender.send(Reply(key, "x", idempotency_key="m-5"))


async def test_status_uses_assistant_thread_status_and_clears_it(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    await sender.set_status(key, "Searching the pension rules…")
    await sender.set_status(key, None)
    assert fake_slack.statuses == [
        ("C0001", key.thread, "Searching the pension rules…"),
        ("C0001", key.thread, ""),
    ]


async def test_an_answer_posted_into_the_thread_clears_its_assistant_status(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    await sender.set_status(key, "Searching the pension rules…")
    assert fake_slack.shown_status == {("C0001", key.thread): "Searching the pension rules…"}
    assert sender.post_clears_status(key)
    await sender.send(Reply(key, "Here is the answer", idempotency_key="m-s1"))
    assert fake_slack.shown_status == {}
    assert [s[2] for s in fake_slack.statuses] == ["Searching the pension rules…"]


async def test_a_status_shown_as_a_reaction_is_not_cleared_by_the_answer(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    fake_slack.set_status_error = "not_allowed"
    await sender.set_status(key, "thinking")
    assert not sender.post_clears_status(key)


async def test_status_falls_back_to_a_reaction_where_set_status_is_not_allowed(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    fake_slack.set_status_error = "not_allowed"
    await sender.set_status(key, "thinking")
    assert fake_slack.reactions[("C0001", key.thread)] == {STATUS_REACTION}
    await sender.set_status(key, "still thinking")
    await sender.set_status(key, None)
    assert fake_slack.reactions[("C0001", key.thread)] == set()
    assert len(fake_slack.calls_to("reactions.add")) == 1


async def test_status_failures_never_raise(fake_slack: FakeSlack, sender: SlackSender) -> None:
    fake_slack.missing_channels.add("C0GONE")
    await sender.set_status(ThreadKey("slack", "T0001", "C0GONE", "1.000001"), "x")
    assert fake_slack.statuses == []


async def test_a_status_answered_with_a_gateways_html_page_is_skipped_not_raised(
    fake_slack: FakeSlack, sender: SlackSender, caplog: pytest.LogCaptureFixture
) -> None:
    key = thread(fake_slack)
    fake_slack.garble_next("assistant.threads.setStatus")
    await sender.set_status(key, "thinking")
    assert "slack status failed: unexpected_answer" in caplog.text
    await sender.set_status(key, "still thinking")
    assert fake_slack.shown_status == {("C0001", key.thread): "still thinking"}


async def test_only_the_last_part_of_an_answer_carries_buttons_and_every_part_is_remembered(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    key = thread(fake_slack)
    text = "\n\n".join(f"Paragraph {i}. " + "words " * 400 for i in range(12))
    await sender.send(Reply(key, text, idempotency_key="a1", run_id="run-9"))
    posted = fake_slack.posted("C0001")
    assert len(posted) >= 2
    assert ["blocks" in m for m in posted] == [False] * (len(posted) - 1) + [True]
    answers = Answers(redis_client)
    for message in posted:
        where = AnswerRef("slack", key.workspace, key.channel, message["ts"])
        assert await answers.run_of(where) == AnsweredRun("run-9", key.thread)


async def test_notices_carry_no_buttons_and_are_not_answers(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    key = thread(fake_slack)
    ts = await sender.send(Reply(key, "handed over", "n1", kind=ReplyKind.NOTICE, run_id="r"))
    [posted] = fake_slack.posted("C0001")
    assert "blocks" not in posted
    assert (
        await Answers(redis_client).run_of(AnswerRef("slack", key.workspace, "C0001", ts)) is None
    )


async def test_refused_feedback_blocks_still_deliver_the_answer(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    fake_slack.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    await sender.send(Reply(key, "the answer", idempotency_key="a2", run_id="run-1"))
    [posted] = fake_slack.posted("C0001")
    assert posted["markdown_text"] == "the answer"


@pytest.mark.parametrize("refusal", ["no_text", "invalid_arguments"])
async def test_where_markdown_text_is_refused_the_answer_arrives_once_as_mrkdwn(
    fake_slack: FakeSlack, sender: SlackSender, refusal: str
) -> None:
    fake_slack.refuse_markdown(refusal)
    key = thread(fake_slack)
    text = "## Plan\n\n**Bold** [docs](https://ex.com/a_b) `x*y` @here"
    reply = Reply(key, text, idempotency_key="m1")
    ts = await sender.send(reply)
    assert await sender.send(reply) == ts  # a retried turn posts nothing again
    [posted] = fake_slack.posted("C0001")
    assert posted["text"] == "*Plan*\n\n*Bold* <https://ex.com/a_b|docs> `x*y` @\u200dhere"
    assert "markdown_text" not in posted
    assert posted["metadata"]["event_payload"] == {"key": "m1", "part": 0, "parts": 1}
    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.args["mrkdwn"] is True


async def test_refused_markdown_with_buttons_falls_back_through_each_form(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    fake_slack.refuse_markdown()
    key = thread(fake_slack)
    ts = await sender.send(Reply(key, "**yes**", idempotency_key="m2", run_id="run-3"))
    tried = [c.args for c in fake_slack.calls if c.method == "chat.postMessage"]
    assert ["blocks" in a for a in tried] == [True, False, False]
    assert "markdown_text" in tried[1]
    [posted] = fake_slack.posted("C0001")
    assert (posted["ts"], posted["text"]) == (ts, "*yes*")
    where = AnswerRef("slack", key.workspace, key.channel, ts)
    assert await Answers(redis_client).run_of(where) == AnsweredRun("run-3", key.thread)


async def test_a_long_answer_refused_as_markdown_arrives_complete_in_order(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    fake_slack.refuse_markdown()
    key = thread(fake_slack)
    text = "\n\n".join(f"**Paragraph {i}** " + "words " * 400 for i in range(12))
    await sender.send(Reply(key, text, idempotency_key="m3"))
    posted = [m["text"] for m in fake_slack.posted("C0001")]
    assert len(posted) >= 2
    joined = "\n\n".join(posted)
    heads = [f"*Paragraph {i}*" for i in range(12)]
    assert [joined.count(h) for h in heads] == [1] * 12
    assert [joined.index(h) for h in heads] == sorted(joined.index(h) for h in heads)


async def test_other_errors_are_not_taken_for_a_markdown_refusal(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    fake_slack.missing_channels.add("C0GONE")
    reply = Reply(ThreadKey("slack", "T0001", "C0GONE", "1.000001"), "x", idempotency_key="m4")
    with pytest.raises(PermanentPlatformError, match="channel_not_found"):
        await sender.send(reply)
    assert len([c for c in fake_slack.calls if c.method == "chat.postMessage"]) == 1


FAST = backoff.Retry(attempts=3, base=0.01, cap=0.02)


@pytest.mark.parametrize(
    ("fault", "fresh"),
    [
        ("5xx", False),  # Slack did not post it
        ("html page", False),  # Slack posted it; a gateway's page came back instead of its answer
        ("5xx", True),  # a fresh answer (no pending mark) after an unsure failure
    ],
)
async def test_a_post_whose_outcome_is_unsure_is_looked_up_before_it_is_posted_again(
    fake_slack: FakeSlack, redis_client: aioredis.Redis, fault: str, fresh: bool
) -> None:
    client = build_client(fake_slack.bot_token, fake_slack.api_url)
    sender = SlackSender(client, redis_client, retry=FAST)
    key = thread(fake_slack)
    if fault == "5xx":
        fake_slack.fail_next("chat.postMessage", 1, status=500, error="internal_error")
    else:
        fake_slack.garble_next("chat.postMessage")
    await sender.send(Reply(key, "once", idempotency_key=f"m-{fault}-{fresh}", fresh=fresh))
    assert [m["markdown_text"] for m in fake_slack.posted("C0001")] == ["once"]
    assert len(fake_slack.calls_to("conversations.replies")) == 1


async def test_a_post_failing_with_5xx_is_tried_exactly_the_configured_times(
    fake_slack: FakeSlack, redis_client: aioredis.Redis
) -> None:
    client = build_client(fake_slack.bot_token, fake_slack.api_url)
    sender = SlackSender(client, redis_client, retry=FAST)
    key = thread(fake_slack)
    fake_slack.fail_next("chat.postMessage", 10, status=503, error="service_unavailable")
    with pytest.raises(PlatformError):
        await sender.send(Reply(key, "never", idempotency_key="m-6"))
    assert 10 - fake_slack.forced_failures_left("chat.postMessage") == FAST.attempts
    assert fake_slack.posted("C0001") == []


@pytest.mark.parametrize(
    ("method", "error", "retried"),
    [
        ("chat.postMessage", aiohttp.ServerDisconnectedError(), False),
        ("chat.postMessage", aiohttp.ClientOSError(104, "reset"), False),
        ("conversations.replies", aiohttp.ServerDisconnectedError(), True),
        ("assistant.threads.setStatus", aiohttp.ClientOSError(104, "reset"), True),
    ],
)
async def test_the_client_repeats_a_dropped_connection_only_for_calls_safe_to_repeat(
    method: str, error: Exception, retried: bool
) -> None:
    request = HttpRequest(method="POST", url=f"https://slack.test/api/{method}", headers={})
    handler = ConnectionRetry()
    assert (
        await handler.can_retry_async(state=RetryState(), request=request, error=error) is retried
    )
    refused = aiohttp.ClientConnectorError(ConnectionKey("h", 1, False, True, None, None, None),
                                           OSError(111, "refused"))  # fmt: skip
    assert await handler.can_retry_async(state=RetryState(), request=request, error=refused)


async def test_a_reply_is_recorded_in_the_core_ledger_with_its_last_part_and_not_posted_again(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    key = thread(fake_slack)
    text = "\n\n".join(f"Paragraph {i}. " + "words " * 400 for i in range(12))
    reply = Reply(key, text, idempotency_key="m-4", run_id="run-4")
    ts, posted_now = await sender.post_once(reply)
    parts = len(fake_slack.calls_to("chat.postMessage"))
    assert posted_now
    assert parts >= 2
    assert await Store(redis_client, record_ttl_seconds=60).posted.get(key, "m-4") == ts
    assert await sender.post_once(reply) == (ts, False)
    assert len(fake_slack.calls_to("chat.postMessage")) == parts
    # Every part is an answer of the run: a reaction on any of them is feedback on it.
    answers = Answers(redis_client)
    for post in fake_slack.calls_to("chat.postMessage"):
        where = AnswerRef("slack", key.workspace, key.channel, post.response["ts"])
        assert await answers.run_of(where) == AnsweredRun("run-4", key.thread)


async def test_a_fresh_answer_is_posted_without_a_pending_mark_and_recorded(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    key = thread(fake_slack)
    claims: list[str] = []
    claim = sender._parts.claim

    async def counted_claim(*args: object) -> object:
        claims.append(str(args[1]))
        return await claim(*args)  # type: ignore[arg-type]

    sender._parts.claim = counted_claim  # type: ignore[method-assign]
    ts = await sender.send(Reply(key, "fresh", idempotency_key="m-f", fresh=True))
    assert claims == []  # no round trip before chat.postMessage
    store = "{" + str(key) + "}:slack:parts"
    assert await redis_client.hgetall(store) == {b"m-f:0": ts.encode()}
    assert await redis_client.hget(keys.posted(key), "m-f") == ts.encode()
    # A retried turn posting the same answer finds it recorded.
    assert await sender.send(Reply(key, "fresh", idempotency_key="m-f", retried=True)) == ts
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert not fake_slack.calls_to("conversations.replies")


async def test_a_retried_answer_an_earlier_attempt_posted_unmarked_is_found_not_posted_again(
    fake_slack: FakeSlack, sender: SlackSender, redis_client: aioredis.Redis
) -> None:
    key = thread(fake_slack)
    ts = await sender.send(Reply(key, "answer", idempotency_key="m-u", fresh=True))
    # As if that attempt died after chat.postMessage, before recording the part (a fresh post
    # leaves no pending mark).
    await redis_client.delete("{" + str(key) + "}:slack:parts")
    await redis_client.hdel(keys.posted(key), "m-u")
    assert await sender.send(Reply(key, "answer", idempotency_key="m-u", retried=True)) == ts
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    assert await redis_client.hget(keys.posted(key), "m-u") == ts.encode()


async def test_a_notice_without_record_is_posted_without_a_look_up(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    key = thread(fake_slack)
    await sender.send(Reply(key, "note", idempotency_key="n-1", kind=ReplyKind.NOTICE))
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert not fake_slack.calls_to("conversations.replies")


async def test_a_refused_token_is_told_once_per_failing_call_and_other_errors_are_not(
    fake_slack: FakeSlack, redis_client: aioredis.Redis
) -> None:
    told: list[tuple[str, str, str]] = []
    client = build_client(fake_slack.bot_token, fake_slack.api_url)
    sender = SlackSender(Clients(client, refused=lambda *said: told.append(said)), redis_client)
    key = thread(fake_slack)
    fake_slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(PermanentPlatformError):
        await sender.send(Reply(key, "hi", idempotency_key="msg-a"))
    assert told == []
    fake_slack.fail_next("assistant.threads.setStatus", status=200, error="token_revoked")
    await sender.set_status(key, "Thinking…")  # never fails a turn
    fake_slack.fail_next("chat.postMessage", status=200, error="invalid_auth")
    with pytest.raises(PermanentPlatformError):
        await sender.send(Reply(key, "hi", idempotency_key="msg-b"))
    assert told == [
        (key.workspace, fake_slack.bot_token, "token_revoked"),
        (key.workspace, fake_slack.bot_token, "invalid_auth"),
    ]
