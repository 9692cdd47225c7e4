"""Every Redis key engage-bridge uses, with its TTL and why (one place, like arq's constants).

Per-thread keys start with the hash tag `{<thread key>}` so all of a thread's keys share one Redis
Cluster slot and can be touched together by one Lua script. Global keys have no tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.models import ThreadKey

# Global keys.
READY_STREAM = "bridge:ready"
"""Stream of thread keys with pending work; entries are deleted once processed."""
WORKER_GROUP = "workers"
"""The one consumer group every worker process joins."""
DEAD_LETTERS = "bridge:dead-letters"
"""Hash turn id -> JSON; no TTL: an operator lists, replays or forgets them."""
READY_PROBE = "bridge:ready-probe"
"""Written by every /readyz (READY_PROBE_TTL_MS): a Redis that answers PING but refuses writes
(maxmemory reached under noeviction, MISCONF after a failed save, a read-only replica) would
refuse every message, so the process is not ready. On a Cluster it probes one node."""
READY_PROBE_TTL_MS = 60_000

# TTLs.
SEEN_TTL_SECONDS = 24 * 3600
"""Dedupe claims outlive every platform retry window (Slack's last retry comes after ~5 min,
desk webhooks may retry for hours) while staying bounded."""
INBOX_TTL_SECONDS = 7 * 24 * 3600
"""Pending messages outlive any outage a worker fleet could sit through; refreshed per push."""
POSTED_TTL_SECONDS = 7 * 24 * 3600
"""Outbound idempotency must outlive every retry of a turn (retries stop within minutes, a
dead letter may be replayed days later); refreshed per write."""
TURN_TTL_SECONDS = 7 * 24 * 3600
"""A turn journal lives until its batch commits; the TTL only guards against orphans."""
CREATE_CLAIM_TTL_SECONDS = 24 * 3600
"""A conversation-create claim marks a possibly half-done create; after a day the search that
recovers it would be too costly to be worth it, and a new conversation is acceptable."""
FEEDBACK_CLAIM_TTL_SECONDS = 24 * 3600
"""A feedback delivery (button click, reaction event) is written once; platforms redeliver
within minutes, so a day is ample and keeps the claims bounded."""
ANSWER_TTL_SECONDS = 30 * 24 * 3600
"""Which run produced a posted answer: people react to answers weeks later; ~120 bytes each."""
FACTS_TTL_SECONDS = 30 * 24 * 3600
"""What an adapter learnt about a thread before its first message (Slack: the channel an assistant
thread was opened from) waits for that message: people come back to such a thread for weeks."""
COMMAND_CLAIM_TTL_SECONDS = 10 * 60
"""A slash command's signed body is accepted for 5 minutes (Slack's timestamp window): a claim
that outlives the window by as much again stops every replay of the same invocation."""
SEARCH_PAGES_ON_RECOVERY = 5
"""Pages (of SEARCH_PAGE_SIZE, newest first) searched for a conversation whose create crashed."""
SEARCH_PAGE_SIZE = 100


def tag(thread: ThreadKey | str) -> str:
    return "{" + str(thread) + "}"


def record(thread: ThreadKey | str) -> str:
    """Hash: the thread's conversation record; idle TTL = settings.thread_idle_ttl_seconds."""
    return f"{tag(thread)}:conv"


def inbox(thread: ThreadKey | str) -> str:
    """List of serialized pending messages, oldest first."""
    return f"{tag(thread)}:inbox"


def seen(thread: ThreadKey | str, message_id: str) -> str:
    """Dedupe claim for one platform message id (SEEN_TTL_SECONDS)."""
    return f"{tag(thread)}:seen:{message_id}"


def lease(thread: ThreadKey | str) -> str:
    """The one worker allowed to run this thread's turns; PX = settings.lease_seconds, fenced by
    a random token and extended by a heartbeat while a turn runs."""
    return f"{tag(thread)}:lease"


LEASE_PATTERN = "{*}:lease"
"""SCAN pattern of every lease (the tag's braces are escaped inside thread keys)."""


def turn(thread: ThreadKey | str) -> str:
    """Turn journal (batch ids, attempt): present means a chat may have reached the agent."""
    return f"{tag(thread)}:turn"


def attempts(thread: ThreadKey | str) -> str:
    """Hash head (message id of the batch's first message) and count of turns started on it;
    deleted by the commit, so it always belongs to the inbox's head batch (TURN_TTL_SECONDS)."""
    return f"{tag(thread)}:attempts"


def posted(thread: ThreadKey | str) -> str:
    """Hash agent message id (or notice id) -> platform message id (POSTED_TTL_SECONDS)."""
    return f"{tag(thread)}:posted"


def facts(thread: ThreadKey | str) -> str:
    """Hash of extra `data` for the thread's conversation, written by an adapter (replaced whole,
    FACTS_TTL_SECONDS); BEGIN reads it for a thread without conversation, the create merges it."""
    return f"{tag(thread)}:facts"


def create_claim(thread: ThreadKey | str) -> str:
    """Set before creating the conversation, deleted once the record is written."""
    return f"{tag(thread)}:creating"


def answer(platform: str, workspace: str, channel: str, message_id: str) -> str:
    """Hash run, thread: the run behind one posted answer (ANSWER_TTL_SECONDS). Reaction events name
    only the message, not its thread, so the key has its own hash tag."""
    return "{answer:" + str(ThreadKey(platform, workspace, channel, message_id)) + "}"


def feedback_claim(platform: str, delivery_id: str) -> str:
    """SET NX claim of one feedback delivery (FEEDBACK_CLAIM_TTL_SECONDS)."""
    return "{feedback:" + platform + ":" + delivery_id + "}"


def feedback_votes(run_id: str) -> str:
    """Hash `<platform>:<user>` -> thumbs last written on the run (ANSWER_TTL_SECONDS), so a
    removed reaction withdraws only the vote it made."""
    return "{feedback-votes:" + run_id + "}"


def command_claim(platform: str, digest: str) -> str:
    """Set once (NX) per slash-command invocation: a replayed delivery finds it and does nothing."""
    return f"bridge:{platform}:command:{digest}"


@dataclass(frozen=True, slots=True)
class Namespace:
    """Keys for one adapter's (or feature's) own state, so no two parts spell the same key:
    per thread `{<thread key>}:<name>:<part>...` (the thread's slot), global `bridge:<name>:...`.
    The owner documents each key's TTL where it uses it."""

    name: str

    def thread(self, thread: ThreadKey | str, *parts: str) -> str:
        return ":".join([tag(thread), self.name, *parts])

    def shared(self, *parts: str) -> str:
        return ":".join(["bridge", self.name, *parts])

    @staticmethod
    def hash_tag(*ids: str) -> str:
        """`{id:id}`: a part that puts every key containing it in one Redis Cluster slot."""
        return "{" + ":".join(ids) + "}"


RECORD_PATTERN = "{*}:conv"
"""SCAN pattern matching every thread record."""
