"""Slack's Socket Mode side of the fake: several connections per app, spread, acks and retries.

What it reproduces (Slack's Socket Mode docs; assumptions are marked):
- `apps.connections.open` hands out a new WSS URL per call; up to 10 connections of one app may
  be open at once; an 11th gets a `disconnect` (`too_many_websockets`) and is closed.
- Each envelope goes to ONE live connection (round robin here: Slack only promises to spread).
- An envelope not acknowledged (`{"envelope_id": ...}`) within `ack_timeout` (Slack: 3 s) is
  sent again with `retry_attempt` + 1 and `retry_reason` "timeout", on another connection when
  there is one, up to `max_retries` (3) times; then Slack gives up. Acks are accepted on any of
  the app's connections (assumption: the envelope id is what Slack matches).
- A dropped connection's unacknowledged envelopes time out and go to the other connections.
- `disconnect` messages: `refresh_requested` and `warning` ask the app to reconnect; the old
  connection keeps receiving until Slack closes it `disconnect_grace` seconds later (or the app
  closes it). `link_disabled` (Socket Mode switched off) closes every connection; envelopes wait
  until it is switched on again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

MAX_CONNECTIONS = 10
MAX_RETRIES = 3


@dataclass(eq=False)
class Connection:
    """One open WebSocket of the app, numbered in the order they were accepted."""

    number: int
    ws: web.WebSocketResponse
    request: web.Request
    delivered: list[str] = field(default_factory=list)
    disconnect_reason: str | None = None

    @property
    def live(self) -> bool:
        return not self.ws.closed and self.disconnect_reason != "link_disabled"

    def abort(self) -> None:
        """Cut the TCP connection without a close frame: what a killed process looks like."""
        if self.request.transport is not None:
            self.request.transport.abort()


@dataclass(frozen=True)
class Delivery:
    connection: int
    retry_attempt: int


@dataclass(eq=False)
class Envelope:
    envelope_id: str
    frame: dict[str, Any]
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ack_payload: dict[str, Any] | None = None
    acked_on: int | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    given_up: bool = False
    timer: asyncio.Task[None] | None = None


class SocketMode:
    """The WebSocket endpoint and the delivery rules; `FakeSlack` owns one."""

    def __init__(self, url_for: Callable[[str], str]) -> None:
        self._url_for = url_for
        self.ack_timeout = 3.0
        self.retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)
        self.max_retries = MAX_RETRIES
        self.disconnect_grace = 10.0
        self.enabled = True
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.connections_opened = 0
        self.connected = asyncio.Event()
        self._numbers = itertools.count(1)
        self._turn = itertools.count()
        self._waiting: list[Envelope] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- apps.connections.open and the WebSocket

    def open_url(self) -> str:
        self.connections_opened += 1
        return self._url_for(str(uuid.uuid4()))

    def live(self) -> list[Connection]:
        return [c for c in self.connections if c.live]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        if not self.enabled or len(self.live()) >= MAX_CONNECTIONS:
            reason = "link_disabled" if not self.enabled else "too_many_websockets"
            await ws.send_json(_disconnect_frame(reason))
            await ws.close()
            return ws
        connection = Connection(next(self._numbers), ws, request)
        await ws.send_json(self._hello(len(self.live()) + 1))
        self.connections.append(connection)
        self.connected.set()
        for envelope in self._waiting[:]:
            self._waiting.remove(envelope)
            await self._deliver(envelope)
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._record_ack(json.loads(frame.data), connection)
        finally:
            self.connections.remove(connection)
            if not self.live():
                self.connected.clear()
        return ws

    def _hello(self, count: int) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0001"},
        }

    def _record_ack(self, ack: dict[str, Any], connection: Connection) -> None:
        envelope = self.envelopes.get(str(ack.get("envelope_id")))
        if envelope is not None and not envelope.acked.is_set():
            envelope.ack_payload = ack.get("payload")
            envelope.acked_on = connection.number
            envelope.acked.set()

    # ---- delivery

    async def push(
        self, payload: dict[str, Any], kind: str = "events_api", to: Connection | None = None
    ) -> Envelope:
        """Send one envelope to one live connection (`to`, or the next in turn)."""
        envelope_id = str(uuid.uuid4())
        frame = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        envelope = Envelope(envelope_id, frame)
        self.envelopes[envelope_id] = envelope
        await self._deliver(envelope, to=to)
        return envelope

    async def _deliver(
        self, envelope: Envelope, *, to: Connection | None = None, avoid: int | None = None
    ) -> None:
        while True:
            connection = to if to is not None and to.live else self._pick(avoid)
            to = None
            if connection is None:
                self._waiting.append(envelope)
                return
            try:
                await connection.ws.send_json(envelope.frame)
            except (ConnectionError, RuntimeError):
                connection.disconnect_reason = connection.disconnect_reason or "broken"
                connection.ws.force_close()
                continue
            connection.delivered.append(envelope.envelope_id)
            envelope.deliveries.append(Delivery(connection.number, envelope.frame["retry_attempt"]))
            self._watch(envelope)
            return

    def _pick(self, avoid: int | None) -> Connection | None:
        live = self.live()
        others = [c for c in live if c.number != avoid]
        choices = others or live
        return choices[next(self._turn) % len(choices)] if choices else None

    def _watch(self, envelope: Envelope) -> None:
        if envelope.timer is not None and envelope.timer is not asyncio.current_task():
            envelope.timer.cancel()
        envelope.timer = self._spawn(self._retry_when_not_acked(envelope))

    async def _retry_when_not_acked(self, envelope: Envelope) -> None:
        try:
            await asyncio.wait_for(envelope.acked.wait(), self.ack_timeout)
            return
        except TimeoutError:
            pass
        attempt = int(envelope.frame["retry_attempt"])
        if attempt >= self.max_retries:
            envelope.given_up = True
            return
        await asyncio.sleep(self.retry_delays[min(attempt, len(self.retry_delays) - 1)])
        if envelope.acked.is_set():
            return
        envelope.frame["retry_attempt"] = attempt + 1
        envelope.frame["retry_reason"] = "timeout"
        await self._deliver(envelope, avoid=envelope.deliveries[-1].connection)

    async def redeliver_unacked(self) -> list[Envelope]:
        """Send every unacknowledged envelope again now, with `retry_attempt` + 1."""
        again = self.unacked()
        for envelope in again:
            envelope.frame["retry_attempt"] += 1
            envelope.frame["retry_reason"] = "timeout"
            last = envelope.deliveries[-1].connection if envelope.deliveries else None
            await self._deliver(envelope, avoid=last)
        return again

    def unacked(self) -> list[Envelope]:
        return [e for e in self.envelopes.values() if not e.acked.is_set()]

    # ---- disconnects

    async def disconnect(
        self,
        reason: str = "refresh_requested",
        connection: Connection | None = None,
        *,
        wait_for_new: bool = True,
        timeout: float = 10.0,
    ) -> None:
        """Send Slack's `disconnect` message to `connection` (default: the newest live one)."""
        if reason == "link_disabled":
            await self.disable()
            return
        old = connection or self.live()[-1]
        opened = self.connections_opened
        old.disconnect_reason = reason
        await old.ws.send_json(_disconnect_frame(reason))
        self._spawn(self._close_later(old))
        if wait_for_new:
            await wait_until(
                lambda: self.connections_opened > opened and any(c is not old for c in self.live()),
                timeout,
            )

    async def _close_later(self, connection: Connection) -> None:
        await asyncio.sleep(self.disconnect_grace)
        await connection.ws.close()

    async def disable(self) -> None:
        """Socket Mode switched off in the app's settings: every connection is told and closed."""
        self.enabled = False
        for connection in list(self.connections):
            connection.disconnect_reason = "link_disabled"
            await connection.ws.send_json(_disconnect_frame("link_disabled"))
            await connection.ws.close()

    def enable(self) -> None:
        self.enabled = True

    # ---- lifecycle

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in list(self.connections):
            await connection.ws.close()


def _disconnect_frame(reason: str) -> dict[str, Any]:
    return {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)
