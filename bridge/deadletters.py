"""Dead letters: turns given up after the last retry, kept with enough to replay them."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.codec import message_from_dict, message_to_dict, with_message_id
from bridge.models import InboundMessage
from bridge.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    turn_id: str
    thread_key: str
    messages: tuple[InboundMessage, ...]
    error: str
    failed_at: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "turn_id": self.turn_id,
                "thread_key": self.thread_key,
                "messages": [message_to_dict(m) for m in self.messages],
                "error": self.error,
                "failed_at": self.failed_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            turn_id=data["turn_id"],
            thread_key=data["thread_key"],
            messages=tuple(message_from_dict(m) for m in data["messages"]),
            error=data["error"],
            failed_at=data["failed_at"],
        )


class DeadLetters:
    """A global hash turn id -> JSON; storing the same turn twice keeps the first."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def store(
        self, turn_id: str, thread_key: str, messages: tuple[InboundMessage, ...], error: str
    ) -> bool:
        letter = DeadLetter(turn_id, thread_key, messages, error, datetime.now(UTC).isoformat())
        stored = await self._store.dead_letters.add(turn_id, letter.to_json())
        if stored:
            log.warning(
                "turn dead-lettered: %s",
                error,
                extra={"thread_key": thread_key, "turn_id": turn_id},
            )
        return stored

    async def get(self, turn_id: str) -> DeadLetter | None:
        raw = await self._store.dead_letters.get(turn_id)
        return DeadLetter.from_json(raw) if raw else None

    async def list(self) -> list[DeadLetter]:
        letters = [DeadLetter.from_json(v) for v in await self._store.dead_letters.all()]
        return sorted(letters, key=lambda d: d.failed_at)

    async def replay(self, turn_id: str) -> DeadLetter | None:
        """Put the turn's messages back into its thread's inbox under fresh dedupe keys."""
        letter = await self.get(turn_id)
        if letter is None:
            return None
        suffix = secrets.token_hex(4)
        fresh = [with_message_id(m, f"{m.message_id}~replay-{suffix}") for m in letter.messages]
        if fresh:
            await self._store.queue.enqueue_together(fresh[0].thread, fresh)
        await self.forget(turn_id)
        log.info(
            "dead letter replayed", extra={"thread_key": letter.thread_key, "turn_id": turn_id}
        )
        return letter

    async def forget(self, turn_id: str) -> bool:
        return await self._store.dead_letters.remove(turn_id)


def turn_id(thread_key: str, message_ids: list[str]) -> str:
    """Stable across retries and crashes: the same batch always has the same id."""
    digest = hashlib.sha256("\n".join([thread_key, *message_ids]).encode()).hexdigest()
    return digest[:20]
