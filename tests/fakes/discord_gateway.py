"""Fake Discord gateway: HELLO, heartbeat ACK, IDENTIFY -> READY + GUILD_CREATE, RESUME."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

HELLO, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HEARTBEAT_ACK, DISPATCH = 10, 1, 2, 6, 9, 11, 0
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message_content
MESSAGE_CONTENT_INTENT = 1 << 15


@dataclass
class GatewaySession:
    """One identified session; its event log lets a RESUME replay what the client missed."""

    session_id: str
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None

    def covers(self, guild_id: str | None) -> bool:
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % count == shard_id

    def record(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.log.append(frame)
        return frame


class FakeGateway:
    """Gateway half of the fake; `ready_payload` and `guild_payloads` come from the REST half."""

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
        self.identifies = 0
        self.resumes = 0
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
        return ws

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
        shard = data.get("shard") or [0, 1]
        session = GatewaySession(secrets.token_hex(8), (int(shard[0]), int(shard[1])), intents)
        self.sessions[session.session_id] = session
        session.ws = ws
        await self._send(session, session.record("READY", self.ready_payload(session)))
        for guild in self.guild_payloads(session):
            await self._send(session, session.record("GUILD_CREATE", guild))
        self.connected.set()
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        self.resumes += 1
        session.ws = ws
        since = int(data.get("seq") or 0) - self.replay_overlap
        for frame in [f for f in session.log if f["s"] > since]:
            await ws.send_str(json.dumps(frame))
        await self._send(session, session.record("RESUMED", {}))
        self.connected.set()
        return session

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send `event` to every session whose shard covers its guild (logged for RESUME)."""
        guild_id = data.get("guild_id")
        for session in list(self.sessions.values()):
            if session.covers(None if guild_id is None else str(guild_id)):
                await self._send(session, session.record(event, data))

    async def drop(self, code: int = 4000) -> None:
        """Close every live connection the way a network blip does: the client should RESUME."""
        self.connected.clear()
        for session in self.sessions.values():
            if session.ws is not None:
                ws, session.ws = session.ws, None
                await ws.close(code=code)

    async def _send(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        if session.ws is None or session.ws.closed:
            return  # kept in the log; a RESUME replays it
        try:
            await session.ws.send_str(json.dumps(frame))
        except ConnectionError:
            session.ws = None

    async def close(self) -> None:
        for session in self.sessions.values():
            if session.ws is not None:
                await session.ws.close(code=1001)
