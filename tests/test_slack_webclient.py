"""The lean Web API client sends what slack_sdk's AsyncWebClient sends, over loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.clients import (
    ConnectionRetry,
    RateLimitRetry,
    build_client,
    close_session,
    open_session,
)
from adapters.slack.webclient import LeanWebClient, LevelAwareLogger, retried_statuses
from bridge.http1 import Http1
from tests.fakes.loopback import serve

TOKEN = "xoxb-lean-test-token"
# Headers that differ between two requests for reasons of the connection, not of the client.
_PER_CONNECTION = frozenset({"host", "content-length"})
DROP, NOT_JSON = -1, -2


class Recorder:
    """A Web API that notes every request's method, headers and body, and answers `ok`
    (or, once per `fail_next` entry, the given status and error; the status `DROP` closes the
    connection without an answer, `NOT_JSON` answers a JSON content type with a non-JSON body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        self._runner, port = await serve(app)
        self.url = f"http://127.0.0.1:{port}/api/"

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "verb": request.method,
                "method": request.match_info["method"],
                "query": dict(request.query),
                "headers": {
                    k.lower(): v
                    for k, v in request.headers.items()
                    if k.lower() not in _PER_CONNECTION
                },
                "body": await request.read(),
            }
        )
        if self.fail_next:
            status, error = self.fail_next.pop(0)
            if status == DROP:
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            if status == NOT_JSON:
                return web.Response(
                    body=b"<html>" + error.encode(), content_type="application/json"
                )
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        return web.json_response({"ok": True, "ts": "1700000000.000100"})


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    api = Recorder()
    await api.start()
    yield api
    await api.aclose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def pair(url: str, session: aiohttp.ClientSession) -> tuple[AsyncWebClient, LeanWebClient]:
    plain = AsyncWebClient(token=TOKEN, base_url=url, session=session)
    lean = LeanWebClient(token=TOKEN, base_url=url, session=session)
    return plain, lean


async def test_json_posts_go_out_as_slack_sdk_sends_them(
    recorder: Recorder, session: aiohttp.ClientSession
) -> None:
    for client in pair(recorder.url, session):
        await client.assistant_threads_setStatus(
            channel_id="C1", thread_ts="1700000000.000001", status="Thinking…"
        )
        await client.chat_postMessage(
            channel="C1",
            thread_ts="1700000000.000001",
            markdown_text="**hi**",
            unfurl_links=False,
            metadata={"event_type": "engage_reply", "event_payload": {"key": "k", "part": 0}},
        )
    plain, lean = recorder.requests[:2], recorder.requests[2:]
    assert [r["method"] for r in lean] == ["assistant.threads.setStatus", "chat.postMessage"]
    assert lean == plain
    assert lean[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert lean[0]["headers"]["content-type"] == "application/json;charset=utf-8"
    assert json.loads(lean[1]["body"])["markdown_text"] == "**hi**"


async def test_json_posts_over_kept_alive_connections_go_out_as_slack_sdk_sends_them(
    recorder: Recorder, session: aiohttp.ClientSession
) -> None:
    plain = AsyncWebClient(token=TOKEN, base_url=recorder.url, session=session)
    lean = build_client(TOKEN, recorder.url)
    open_session(lean)
    assert isinstance(lean, LeanWebClient)
    assert lean.http1 is not None
    try:
        for client in (plain, lean, lean):
            await client.assistant_threads_setStatus(
                channel_id="C1", thread_ts="1700000000.000001", status="Thinking…"
            )
            await client.chat_postMessage(channel="C1", thread_ts="1700000000.000001",
                                          markdown_text="**hï** “x”")  # fmt: skip
            await client.conversations_replies(channel="C1", ts="1700000000.000001")
    finally:
        await close_session(lean)
    by_slack_sdk, over_http1, again = (recorder.requests[i : i + 3] for i in (0, 3, 6))
    assert over_http1 == by_slack_sdk == again
    assert over_http1[2]["verb"] == "GET"  # not a JSON POST: aiohttp's


async def test_forms_and_gets_take_slack_sdks_own_path(
    recorder: Recorder, session: aiohttp.ClientSession
) -> None:
    for client in pair(recorder.url, session):
        await client.conversations_replies(channel="C1", ts="1700000000.000001", limit=200)
        await client.api_call("auth.test", data={"token": "xoxb-other-token"})
    plain, lean = recorder.requests[:2], recorder.requests[2:]
    assert [(r["verb"], r["method"]) for r in lean] == [
        ("GET", "conversations.replies"),
        ("POST", "auth.test"),
    ]
    assert lean == plain


async def test_a_new_token_reaches_the_next_call(
    recorder: Recorder, session: aiohttp.ClientSession
) -> None:
    client = LeanWebClient(token=TOKEN, base_url=recorder.url, session=session)
    await client.chat_postMessage(channel="C1", text="one")
    client.token = "xoxb-rotated-token"
    await client.chat_postMessage(channel="C1", text="two")
    auth = [r["headers"]["authorization"] for r in recorder.requests]
    assert auth == [f"Bearer {TOKEN}", "Bearer xoxb-rotated-token"]


async def test_retry_handlers_and_errors_still_apply_on_the_lean_path(
    recorder: Recorder, session: aiohttp.ClientSession
) -> None:
    client = build_client(TOKEN, recorder.url)
    assert isinstance(client, LeanWebClient)
    assert [type(h) for h in client.retry_handlers] == [ConnectionRetry, RateLimitRetry]
    client.session = session
    recorder.fail_next = [(429, "ratelimited")]
    response = await client.chat_postMessage(channel="C1", text="after a 429")
    assert response["ok"] is True
    assert len(recorder.requests) == 2
    recorder.fail_next = [(200, "channel_not_found")]
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C404", text="nowhere")
    assert raised.value.response["error"] == "channel_not_found"


def test_the_web_api_logger_reports_its_effective_level() -> None:
    base = logging.getLogger("tests.slack_webclient.level")
    logger = LevelAwareLogger(base)
    base.setLevel(logging.INFO)
    try:
        # slack_sdk formats its per-call debug lines when `logger.level <= DEBUG`.
        assert logger.level == logging.INFO
        base.setLevel(logging.DEBUG)
        assert logger.level == logging.DEBUG
        base.setLevel(logging.NOTSET)
        assert logger.level == base.getEffectiveLevel() != logging.NOTSET
    finally:
        base.setLevel(logging.NOTSET)


async def test_debug_lines_still_come_when_debug_is_on(
    recorder: Recorder, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    client = build_client(TOKEN, recorder.url)
    client.session = session
    with caplog.at_level(logging.INFO, logger="slack_sdk"):
        await client.chat_postMessage(channel="C1", text="quiet")
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]
    with caplog.at_level(logging.DEBUG, logger="slack_sdk"):
        await client.chat_postMessage(channel="C1", text="loud")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("slack_sdk")]
    assert any(line.startswith("Sending a request") for line in lines)
    assert any(line.startswith("Received the following response") for line in lines)
    assert not any(TOKEN in line for line in lines)


class RetriesAnError(AsyncRetryHandler):
    """A handler that does not say which answers it retries: one whose body says `try_again`."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=2, interval_calculator=NO_WAIT)

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and (response.body or {}).get("error") == "try_again"


NO_WAIT = FixedValueRetryIntervalCalculator(0.0)
QUIET = LevelAwareLogger(logging.getLogger("tests.slack_webclient.quiet"))


def ours() -> list[AsyncRetryHandler]:
    return list(build_client(TOKEN, "http://127.0.0.1:9/api/").retry_handlers)


def slack_sdks() -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=NO_WAIT),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=NO_WAIT),
    ]


# (method, answers before the ok, handlers, requests made): each case runs through slack_sdk's
# own request loop and LeanWebClient's, which must make the same requests and end the same way.
CASES = {
    "429 waited out": ("chat.postMessage", [(429, "ratelimited")], ours, 2),
    "429 past the handler's tries": ("chat.postMessage", [(429, "ratelimited")] * 3, slack_sdks, 3),
    "5xx not repeated by our handlers": ("chat.postMessage", [(500, "internal_error")], ours, 1),
    "5xx retried by slack_sdk's": ("chat.postMessage", [(503, "unavailable")], slack_sdks, 2),
    "Slack's error": ("assistant.threads.setStatus", [(200, "not_allowed")], ours, 1),
    "a handler that reads answers": ("chat.postMessage", [(200, "try_again")] * 2,
                                     lambda: [RetriesAnError()], 3),
    "dropped post, not repeated": ("chat.postMessage", [(DROP, "")], ours, 1),
    "dropped status, repeated": ("assistant.threads.setStatus", [(DROP, "")] * 2, ours, 3),
    "not JSON": ("chat.postMessage", [(NOT_JSON, "bad gateway")], ours, 1),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_the_lean_request_loop_retries_and_fails_as_slack_sdks_does(
    recorder: Recorder, session: aiohttp.ClientSession, case: str
) -> None:
    method, failures, handlers, requests = CASES[case]
    outcomes = []
    for cls, over_http1 in ((AsyncWebClient, False), (LeanWebClient, False), (LeanWebClient, True)):
        # A logger at its effective level: slack_sdk's own (NOTSET) means debug lines, which
        # LeanWebClient leaves to slack_sdk's loop.
        client = cls(token=TOKEN, base_url=recorder.url, session=session,
                     retry_handlers=handlers(), logger=cast(logging.Logger, QUIET))  # fmt: skip
        if over_http1:
            assert isinstance(client, LeanWebClient)
            client.http1 = Http1(timeout=10.0)
        recorder.requests.clear()
        recorder.fail_next = list(failures)
        try:
            response = await client.api_call(method, json={"channel": "C1", "text": case})
            outcome = ("ok", response.status_code, response.data)
        except SlackApiError as exc:
            outcome = ("SlackApiError", str(exc), getattr(exc.response, "status_code", None))
        except aiohttp.ClientError as exc:
            outcome = (type(exc).__name__, "", None)
        outcomes.append((outcome, len(recorder.requests)))
        if isinstance(client, LeanWebClient) and client.http1 is not None:
            client.http1.close()
    plain, lean, lean_over_http1 = outcomes
    assert lean == plain
    assert lean_over_http1 == plain
    assert plain[1] == requests


def test_which_answers_the_handlers_may_retry() -> None:
    assert retried_statuses(ours()) == {429}
    assert retried_statuses(slack_sdks()) == {429, 500, 503}
    assert retried_statuses([]) == frozenset()
    assert retried_statuses([*ours(), RetriesAnError()]) is None
