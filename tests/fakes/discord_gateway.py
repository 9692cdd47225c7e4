"""Fake Discord gateway: HELLO, heartbeats, IDENTIFY (shard and concurrency rules) -> READY +
GUILD_CREATE per shard, events only to live sessions covering their guild, RESUME replays."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

HELLO, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HEARTBEAT_ACK, DISPATCH = 10, 1, 2, 6, 9, 11, 0
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message_content
MESSAGE_CONTENT_INTENT = 1 << 15
INVALID_SHARD, SHARDING_REQUIRED = 4010, 4011


def shard_of(guild_id: str | None, shard_count: int) -> int:
    """Discord's routing rule; DMs always go to shard 0."""
    return 0 if guild_id is None else (int(guild_id) >> 22) % shard_count


@dataclass
class GatewaySession:
    """One identified session; its event log lets a RESUME replay what the client missed."""

    session_id: str
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    disconnected_at: float = 0.0

    def covers(self, guild_id: str | None) -> bool:
        shard_id, count = self.shard
        return shard_of(guild_id, count) == shard_id

    @property
    def live(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def record(self, event: str, data: dict[str, Any], log_limit: int) -> dict[str, Any]:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.log.append(frame)
        if len(self.log) > log_limit:
            del self.log[: len(self.log) - log_limit]
        return frame


class FakeGateway:
    """Gateway half of the fake; `ready_payload` and `guild_payloads` come from the REST half.

    Faithful where the bridge's correctness depends on it: an event reaches only the sessions
    whose shard covers its guild and only while they are connected (a session without a live
    connection keeps it for a RESUME, a fresh IDENTIFY never sees it); a shard outside
    [0, shard_count) closes with 4010; more IDENTIFYs than `max_concurrency` per rate-limit
    bucket (shard_id % max_concurrency) within `identify_window` seconds get op 9 Invalid
    Session; a session disconnected longer than `resume_window` (or asked to resume from a
    sequence older than its kept log) cannot be resumed.
    """

    def __init__(
        self,
        *,
        token: str,
        ready_payload: Callable[[GatewaySession], dict[str, Any]],
        guild_payloads: Callable[[GatewaySession], list[dict[str, Any]]],
    ) -> None:
        self.token = token
        self.ready_payload = ready_payload
        self.guild_payloads = guild_payloads
        self.sessions: dict[str, GatewaySession] = {}
        self.enabled_privileged_intents = PRIVILEGED_INTENTS
        self.min_shards = 1
        self.max_concurrency = 16
        self.identify_window = 5.0
        self.resume_window = 120.0
        self.log_limit = 5000
        self.identifies = 0
        self.rejected_identifies = 0
        self.resumes = 0
        self._bucket_identified_at: dict[int, float] = {}
        # Events replayed from before the client's sequence on RESUME: Discord's delivery is
        # at-least-once in practice, and the bridge must not answer a replayed message twice.
        self.replay_overlap = 0
        self.connected = asyncio.Event()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": 41250}}))
        session: GatewaySession | None = None
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            op, data = message.get("op"), message.get("d")
            if op == HEARTBEAT:
                await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
            elif op == IDENTIFY:
                session = await self._identify(ws, data)
            elif op == RESUME:
                session = await self._resume(ws, data)
        if session is not None and session.ws is ws:
            session.ws = None
            session.disconnected_at = time.monotonic()
        return ws

    def live_shards(self) -> list[tuple[int, int]]:
        return sorted(s.shard for s in self.sessions.values() if s.live)

    async def _identify(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        self.identifies += 1
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.enabled_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard_id, count = (int(n) for n in (data.get("shard") or [0, 1]))
        if count < 1 or not 0 <= shard_id < count:
            await ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return None
        if count < self.min_shards:
            await ws.close(code=SHARDING_REQUIRED, message=b"Sharding required.")
            return None
        if not self._identify_allowed(shard_id):
            self.rejected_identifies += 1
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        session = GatewaySession(secrets.token_hex(8), (shard_id, count), intents)
        self.sessions[session.session_id] = session
        session.ws = ws
        await self._send(session, self._record(session, "READY", self.ready_payload(session)))
        for guild in self.guild_payloads(session):
            await self._send(session, self._record(session, "GUILD_CREATE", guild))
        self.connected.set()
        return session

    def _identify_allowed(self, shard_id: int) -> bool:
        bucket = shard_id % self.max_concurrency
        now = time.monotonic()
        last = self._bucket_identified_at.get(bucket)
        if last is not None and now - last < self.identify_window:
            return False
        self._bucket_identified_at[bucket] = now
        return True

    async def _resume(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        self._forget_expired()
        session = self.sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        oldest_kept = session.log[0]["s"] if session is not None and session.log else 1
        if session is None or data.get("token") != self.token or seq + 1 < oldest_kept:
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        self.resumes += 1
        session.ws = ws
        since = seq - self.replay_overlap
        for frame in [f for f in session.log if f["s"] > since]:
            await ws.send_str(json.dumps(frame))
        await self._send(session, self._record(session, "RESUMED", {}))
        self.connected.set()
        return session

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send `event` to every session whose shard covers its guild (logged for RESUME)."""
        guild_id = data.get("guild_id")
        self._forget_expired()
        for session in list(self.sessions.values()):
            if session.covers(None if guild_id is None else str(guild_id)):
                await self._send(session, self._record(session, event, data))

    async def drop(self, code: int = 4000, *, session_id: str | None = None) -> None:
        """Close live connections (all, or one session's) the way a network blip does: the
        client should RESUME and get what it missed replayed."""
        self.connected.clear()
        for session in list(self.sessions.values()):
            if session.ws is not None and session_id in (None, session.session_id):
                ws, session.ws = session.ws, None
                session.disconnected_at = time.monotonic()
                await ws.close(code=code)

    def _record(self, session: GatewaySession, event: str, data: dict[str, Any]) -> dict[str, Any]:
        return session.record(event, data, self.log_limit)

    def _forget_expired(self) -> None:
        """Sessions gone longer than the resume window are invalid, as on Discord."""
        cutoff = time.monotonic() - self.resume_window
        for sid, session in list(self.sessions.items()):
            if session.ws is None and 0 < session.disconnected_at < cutoff:
                del self.sessions[sid]

    async def _send(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        if session.ws is None or session.ws.closed:
            return  # kept in the log; only a RESUME of this session replays it
        try:
            await session.ws.send_str(json.dumps(frame))
        except ConnectionError:
            session.ws = None
            session.disconnected_at = time.monotonic()

    async def close(self) -> None:
        for session in self.sessions.values():
            if session.ws is not None:
                await session.ws.close(code=1001)
