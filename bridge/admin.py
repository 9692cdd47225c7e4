"""The operator's maintenance verbs: threads, history, dead-letters, rebuild-map.

Each prints only its result (see bridge/output.py for the formats); errors are BridgeErrors the
CLI prints as one line.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from bridge.config import Settings
from bridge.errors import BridgeError
from bridge.maintenance import offline_bridge
from bridge.models import ThreadKey
from bridge.output import Progress, fields, table

THREAD_COLUMNS = ("thread_key", "conversation_id", "agent", "status", "updated")
LETTER_COLUMNS = ("turn_id", "thread_key", "failed_at", "messages", "error")


def parse_key(text: str) -> ThreadKey:
    try:
        return ThreadKey.parse(text)
    except ValueError as exc:
        raise BridgeError(f"{exc} (expected platform:workspace:channel:thread)") from exc


async def cmd_threads(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    async with offline_bridge(settings) as bridge:
        threads = bridge.threads
        if args.action == "list":
            records = await threads.list()
            rows = [record.to_hash() for record in records]
            table(out, THREAD_COLUMNS, rows, as_json=args.json, noun="thread")
            return 0
        key = parse_key(args.key)
        if args.action == "show":
            record = await threads.get(key)
            if record is None:
                raise BridgeError(f"no conversation is mapped to thread {key}")
            fields(out, record.to_hash(), as_json=args.json)
            return 0
        if not await threads.forget(key):
            raise BridgeError(f"no conversation is mapped to thread {key}")
        print(f"forgot thread {key} (its next message starts a new conversation)", file=out)
        return 0


async def cmd_history(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key)
    async with offline_bridge(settings) as bridge:
        history = await bridge.history(key)
    if history is None:
        raise BridgeError(f"no conversation is mapped to thread {key}")
    conversation_id = history.record.conversation_id
    if args.json:
        messages = [m.model_dump(mode="json") for m in history.messages]
        doc = {"thread_key": str(key), "conversation_id": conversation_id, "messages": messages}
        fields(out, doc | ({"note": history.note} if history.note else {}), as_json=True)
        return 0
    if history.note:
        print(f"conversation {conversation_id}: {history.note}", file=out)
        return 0
    print(f"conversation {conversation_id} ({len(history.messages)} messages)", file=out)
    for message in history.messages:
        print(f"{message.role}: {message.content}", file=out)
    return 0


async def cmd_dead_letters(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    async with offline_bridge(settings) as bridge:
        letters = bridge.dead_letters
        if args.action == "list":
            rows = [
                {
                    "turn_id": d.turn_id,
                    "thread_key": d.thread_key,
                    "failed_at": d.failed_at,
                    "messages": len(d.messages),
                    "error": d.error,
                }
                for d in await letters.list()
            ]
            table(out, LETTER_COLUMNS, rows, as_json=args.json, noun="dead letter")
            return 0
        ids = [d.turn_id for d in await letters.list()] if args.all else list(args.ids)
        if not ids:
            raise BridgeError("name the dead letters to replay, or --all")
        progress = Progress("replayed", total=len(ids))
        missing, queued = [], 0
        for turn_id in ids:
            replayed = await letters.replay(turn_id)
            if replayed is None:
                missing.append(turn_id)
            else:
                queued += len(replayed.messages)
            progress.advance()
        progress.close()
    done = len(ids) - len(missing)
    print(
        f"replayed {done} dead letter(s): {queued} message(s) queued again "
        "(a running bridge's workers answer them)",
        file=out,
    )
    if missing:
        raise BridgeError(f"no dead letter {', '.join(missing)}")
    return 0


async def cmd_rebuild_map(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    progress = Progress("conversations read")
    async with offline_bridge(settings) as bridge:
        count = await bridge.rebuild_map(progress=progress.advance)
    progress.close()
    print(f"rebuilt {count} thread record(s) from Engage Smarter conversations", file=out)
    return 0
