"""Serving the emulator with uvicorn: `serve()` for the CLI, `ThreadedEmulator` for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn

from bridge.emulator.app import create_app
from bridge.emulator.faults import Faults
from bridge.emulator.state import EmulatorState
from bridge.guard import IngressGuard

# The bridge's chat calls carry a turn's batch of messages; see bridge.http.MOUNTED_APP_LIMIT.
EMULATOR_BODY_LIMIT = 8 * 1024 * 1024


async def serve(host: str = "127.0.0.1", port: int = 8000, *, admin: bool = False) -> None:
    """Run the emulator until cancelled (Ctrl-C); `admin` adds the /_emulator/ test controls."""
    app = IngressGuard(create_app(admin=admin), limit=EMULATOR_BODY_LIMIT)
    config = uvicorn.Config(app, host=host, port=port, log_config=None)
    await uvicorn.Server(config).serve()


class ThreadedEmulator:
    """An emulator on an ephemeral loopback port, served from a background thread.

    For tests and benchmarks, so its /_emulator/ test controls are on.
    """

    def __init__(self, state: EmulatorState | None = None, faults: Faults | None = None) -> None:
        self.state = state if state is not None else EmulatorState()
        self.faults = faults if faults is not None else Faults()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted sockets inherit this; without it every keep-alive request waits ~40 ms for a
        # delayed ACK (uvicorn writes a response's head and body separately).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        app = IngressGuard(
            create_app(self.state, faults=self.faults, admin=True), limit=EMULATOR_BODY_LIMIT
        )
        config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()
