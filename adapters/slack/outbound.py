"""Posting replies and agent status into Slack threads, at most once per part."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.apierrors import UNEXPECTED_ANSWER, error_code
from adapters.slack.clients import Clients
from adapters.slack.clients import build_client as build_client
from adapters.slack.feedback_blocks import answer_blocks
from adapters.slack.format import MARKDOWN_TEXT_LIMIT, neutralise_pings
from adapters.slack.mrkdwn import split_mrkdwn_safe, to_mrkdwn
from bridge import backoff
from bridge.errors import PermanentPlatformError, PlatformError
from bridge.models import Reply, ReplyKind, ThreadKey
from bridge.parts import DEFAULT_MAX_PARTS, bounded
from bridge.store import RedisClient
from bridge.store.parts import AnswerIndex, Parts, PartState

Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)

REPLY_EVENT_TYPE = "engage_reply"
STATUS_REACTION = "hourglass_flowing_sand"
STATUS_TEXT_LIMIT = 120
_PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
        "account_inactive", "token_revoked", "missing_scope", "msg_too_long", "no_text",
        "markdown_text_conflict", "invalid_blocks", "restricted_action", "thread_locked",
    }
)  # fmt: skip
# setStatus is refused outside AI-app threads or without the scope: a reaction says the same.
_STATUS_REFUSALS = frozenset(
    {
        "not_allowed",
        "missing_scope",
        "not_allowed_token_type",
        "unknown_method",
        "invalid_arguments",
    }
)
# Slack's own words for a failure on its side (it answers them with HTTP 200 too).
_SERVER_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_UNSURE_ERRORS = _SERVER_ERRORS | {UNEXPECTED_ANSWER}
_FALLBACK_MEMORY = 10_000
# What a Slack that does not take standard Markdown answers (tests/fakes/slack.refuse_markdown):
# the docs name no error for it; an ignored unknown argument leaves `no_text`.
_REFUSED = {
    "blocks": frozenset({"invalid_blocks"}),
    "markdown_text": frozenset(
        {"no_text", "invalid_arguments", "invalid_arg_name", "markdown_text_conflict"}
    ),
}


def translate(exc: Exception, method: str) -> PlatformError:
    if isinstance(exc, SlackApiError):
        error = error_code(exc) or "unknown_error"
        cls = PermanentPlatformError if error in _PERMANENT_ERRORS else PlatformError
        return cls(f"slack {method} failed: {error}")
    return PlatformError(f"slack {method} failed: {type(exc).__name__}")


class SlackSender:
    """`send` and `set_status` for the Slack adapter.

    Outbound idempotency (bridge.store.parts): each part of a reply is marked pending in the
    step that finds it unposted, and recorded (ts) once posted; the last part's record also
    records the reply in the core's posted ledger, and an answer's parts its run (reactions are
    feedback on it). A retried reply skips recorded parts; a part left pending (the process died
    between posting and recording) is looked up in the thread with `conversations.replies`, by
    the `engage_reply` metadata every part carries.
    """

    def __init__(
        self,
        client: AsyncWebClient | Clients,
        redis: RedisClient,
        *,
        max_parts: int = DEFAULT_MAX_PARTS,
        user_mentions: bool = False,
        retry: backoff.Retry | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._clients = client if isinstance(client, Clients) else Clients(client)
        self._parts = Parts(redis, "slack")
        self._max_parts = max_parts
        self._neutralise_users = not user_mentions
        self._status_by_reaction: set[ThreadKey] = set()
        self._retry = retry or backoff.Retry()
        self._sleep = sleep

    async def send(self, reply: Reply) -> str:
        return (await self.post_once(reply))[0]

    async def post_once(self, reply: Reply) -> tuple[str, bool]:
        """Post the parts of `reply` Slack does not have yet: (ts of the last part, whether
        anything was posted now). A reply in the core's posted ledger is not posted again, and
        the last part's record records the reply there (bridge.store.parts)."""
        text = neutralise_pings(reply.text, users=self._neutralise_users)
        parts = bounded(split_mrkdwn_safe(text, MARKDOWN_TEXT_LIMIT), self._max_parts)
        parts = parts or ["\u200b"]
        answer = None
        if reply.run_id and reply.kind is ReplyKind.AGENT:
            # A reaction on any part of an answer is feedback on its run.
            where = ("slack", reply.thread.workspace, reply.thread.channel)
            answer = AnswerIndex(where, reply.run_id, reply.thread.thread)
        ts, posted_now = "", False
        for index, part in enumerate(parts):
            ts, posted = await self._post_part(reply, index, len(parts), part, answer)
            if posted is None:
                return ts, posted_now  # the whole reply is recorded
            posted_now = posted_now or posted
        return ts, posted_now

    async def _post_part(
        self, reply: Reply, index: int, total: int, text: str, answer: AnswerIndex | None
    ) -> tuple[str, bool | None]:
        """The Slack side's one retry of a post whose outcome is unsure (a 5xx, a timeout, a
        dropped connection): the pending part is looked up before it is posted again. 429s and
        failed connections are retried inside the client (adapters/slack/clients.py)."""
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return await self._post_once(reply, index, total, text, answer, attempt > 1)
            except PlatformError as exc:
                if attempt == self._retry.attempts or not _unsure(exc):
                    raise
                pause = self._retry.wait(attempt)
                log.warning(
                    "slack post failed (attempt %d): %s; looking it up in %.2fs",
                    attempt, exc, pause, extra={"thread_key": str(reply.thread)},
                )  # fmt: skip
                await self._sleep(pause)
        raise AssertionError("unreachable")

    async def _post_once(
        self,
        reply: Reply,
        index: int,
        total: int,
        text: str,
        answer: AnswerIndex | None,
        unsure: bool = False,
    ) -> tuple[str, bool | None]:
        """(ts, True posted now | False Slack had it | None the whole reply is recorded).
        `unsure`: an earlier try of this part failed and may have posted it."""
        last = index == total - 1
        if reply.fresh and not unsure:
            # Nothing can have posted it (Reply.fresh): no pending mark, one Redis round trip
            # (10-20 ms p50 at 200/50 on 2 shared cores) less before the answer shows.
            ts = await self._post(reply, index, total, text)
            await self._parts.posted(
                reply.thread, reply.idempotency_key, index, ts, last=last, answer=answer
            )
            return ts, True
        claim = await self._parts.claim(reply.thread, reply.idempotency_key, index)
        if claim.state is PartState.REPLY_POSTED:
            return claim.platform_id, None
        if claim.state is PartState.PART_POSTED and not last:
            return claim.platform_id, False
        ts = claim.platform_id
        # Posted unmarked maybe: by an earlier attempt of a retried turn, or an earlier try.
        unmarked = unsure or reply.retried
        if claim.state is PartState.PENDING or (claim.state is PartState.MARKED and unmarked):
            ts = await self._find_posted(reply, index) or ""
        posted = not ts
        if posted:
            ts = await self._post(reply, index, total, text)
        await self._parts.posted(
            reply.thread, reply.idempotency_key, index, ts, last=last, answer=answer
        )
        return ts, posted

    async def _post(self, reply: Reply, index: int, total: int, text: str) -> str:
        metadata = {
            "event_type": REPLY_EVENT_TYPE,
            "event_payload": {"key": reply.idempotency_key, "part": index, "parts": total},
        }
        # Buttons need blocks; each form Slack refuses falls back to the next, down to mrkdwn.
        tries: list[tuple[str, dict[str, Any]]] = [("markdown_text", {"markdown_text": text})]
        if reply.run_id and reply.kind is ReplyKind.AGENT and index == total - 1:
            blocks = answer_blocks(text, reply.run_id)
            tries.insert(0, ("blocks", {"text": text, "blocks": blocks}))
        response = await self._post_first_taken(reply, metadata, tries, text)
        # DEBUG: the turn's own INFO line says it was answered; a formatted line costs ~23 us.
        log.debug(
            "slack reply part posted",
            extra={"thread_key": str(reply.thread), "part": index, "parts": total},
        )
        return str(response["ts"])

    async def _post_first_taken(
        self,
        reply: Reply,
        metadata: dict[str, Any],
        tries: list[tuple[str, dict[str, Any]]],
        text: str,
    ) -> Any:
        for form, content in tries:
            try:
                return await self._post_content(reply, metadata, content)
            except SlackApiError as exc:
                error = error_code(exc)
                if error not in _REFUSED[form]:
                    raise translate(exc, "chat.postMessage") from exc
                log.warning(
                    "slack refused the answer as %s (%s): trying the next form", form, error
                )
        # Converted only when needed: to_mrkdwn takes ~0.5 us per character (158 us for 300).
        content = {"text": to_mrkdwn(text), "mrkdwn": True}
        try:
            return await self._post_content(reply, metadata, content)
        except SlackApiError as exc:
            raise translate(exc, "chat.postMessage") from exc

    async def _post_content(
        self, reply: Reply, metadata: dict[str, Any], content: dict[str, Any]
    ) -> Any:
        try:
            client = await self._clients.for_team(reply.thread.workspace)
            return await client.chat_postMessage(
                channel=reply.thread.channel,
                thread_ts=reply.thread.thread,
                metadata=metadata,
                unfurl_links=False,
                **content,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise translate(exc, "chat.postMessage") from exc

    async def _find_posted(self, reply: Reply, index: int) -> str | None:
        cursor: str | None = None
        while True:
            try:
                client = await self._clients.for_team(reply.thread.workspace)
                page = await client.conversations_replies(
                    channel=reply.thread.channel,
                    ts=reply.thread.thread,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            except (TimeoutError, SlackApiError, aiohttp.ClientError) as exc:
                raise translate(exc, "conversations.replies") from exc
            messages: list[dict[str, Any]] = page.get("messages", [])
            for message in messages:
                if _is_part(message, reply.idempotency_key, index):
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return None

    async def set_status(self, thread: ThreadKey, status: str | None) -> None:
        """Never fails a turn: a status that cannot be shown is logged and skipped."""
        text = _status_text(status)
        try:
            if thread not in self._status_by_reaction:
                try:
                    client = await self._clients.for_team(thread.workspace)
                    await client.assistant_threads_setStatus(
                        channel_id=thread.channel, thread_ts=thread.thread, status=text
                    )
                    return
                except SlackApiError as exc:
                    if error_code(exc) not in _STATUS_REFUSALS:
                        raise
                    if len(self._status_by_reaction) > _FALLBACK_MEMORY:
                        self._status_by_reaction.clear()
                    self._status_by_reaction.add(thread)
            await self._react(thread, add=bool(text))
        except (TimeoutError, SlackApiError, aiohttp.ClientError) as exc:
            log.warning("slack status not shown: %s", translate(exc, "status"))

    def post_clears_status(self, thread: ThreadKey) -> bool:
        """Slack removes an assistant thread's status when the app posts in it; a reaction shown
        instead (setStatus refused) stays until it is removed."""
        return thread not in self._status_by_reaction

    async def _react(self, thread: ThreadKey, *, add: bool) -> None:
        client = await self._clients.for_team(thread.workspace)
        call = client.reactions_add if add else client.reactions_remove
        try:
            await call(channel=thread.channel, timestamp=thread.thread, name=STATUS_REACTION)
        except SlackApiError as exc:
            if error_code(exc) not in ("already_reacted", "no_reaction"):
                raise


def _unsure(exc: PlatformError) -> bool:
    """Slack may have failed before acting, or acted and failed to say so: worth a look-up."""
    cause = exc.__cause__
    if isinstance(exc, PermanentPlatformError):
        return False
    if isinstance(cause, SlackApiError):
        status = getattr(cause.response, "status_code", 200)
        return status >= 500 or error_code(cause) in _UNSURE_ERRORS
    return isinstance(cause, TimeoutError | aiohttp.ClientError)


def _status_text(status: str | None) -> str:
    if not status:
        return ""
    status = " ".join(neutralise_pings(status).split())
    if len(status) <= STATUS_TEXT_LIMIT:
        return status
    return status[: STATUS_TEXT_LIMIT - 1] + "…"


def _is_part(message: dict[str, Any], key: str, index: int) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return bool(
        metadata.get("event_type") == REPLY_EVENT_TYPE
        and payload.get("key") == key
        and payload.get("part") == index
    )
