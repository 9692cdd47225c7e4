"""The chaos run's processes: bridge processes (killed and restarted), the emulator, RSS peaks."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a live process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def wait_http(url: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
            await asyncio.sleep(0.1)


class Emulator:
    """`engage-bridge emulator` in its own process: shared by every bridge process."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "emulator.log", "ab")  # noqa: SIM115
        exe = Path(sys.executable).parent / "engage-bridge"
        self.process = subprocess.Popen(
            [str(exe), "emulator", "--port", str(self.port), "--admin"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=workdir,
            env={**os.environ, "ENGAGE_BRIDGE_LOG_LEVEL": "WARNING"},
        )

    async def ready(self) -> None:
        await wait_http(f"{self.url}/_emulator/faults", timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


class Fleet:
    """N bridge processes on fixed ports; a slot that dies (killed or crashed) is restarted."""

    root = ROOT  # the checkout whose code the processes run

    def __init__(
        self, count: int, env: dict[str, str], workdir: Path, per_slot: list[dict[str, str]]
    ):
        self.ports = [free_port() for _ in range(count)]
        self.env = env
        self.workdir = workdir
        self.per_slot = per_slot
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.peak_kib = [0] * count
        self.kills = 0
        self.crashes = 0
        self.starts = 0
        self._logs = [open(workdir / f"bridge-{i}.log", "ab") for i in range(count)]  # noqa: SIM115

    def url(self, slot: int) -> str:
        return f"http://127.0.0.1:{self.ports[slot]}"

    def spawn(self, slot: int) -> None:
        env = {
            **os.environ,
            **self.env,
            **self.per_slot[slot],
            "ENGAGE_BRIDGE_HTTP_PORT": str(self.ports[slot]),
            "PYTHONPATH": str(self.root),
        }
        self.processes[slot] = subprocess.Popen(
            [sys.executable, "-m", "bench.bridge_process"],
            stdout=subprocess.DEVNULL,
            stderr=self._logs[slot],
            cwd=self.workdir,
            env=env,
        )
        self.starts += 1

    async def start_all(self) -> None:
        for slot in range(len(self.ports)):
            self.spawn(slot)
        await asyncio.gather(
            *(wait_http(f"{self.url(s)}/readyz", 60) for s in range(len(self.ports)))
        )

    def sample(self) -> None:
        for slot, process in enumerate(self.processes):
            if process is not None:
                self.peak_kib[slot] = max(self.peak_kib[slot], peak_rss_kib(process.pid))

    def kill_one(self, rng: random.Random) -> int:
        slot = rng.randrange(len(self.processes))
        process = self.processes[slot]
        if process is not None and process.poll() is None:
            self.sample()
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.kills += 1
            self.spawn(slot)
        return slot

    def revive(self) -> None:
        """Restart any slot whose process exited on its own (a role failed, e.g. Redis restart)."""
        for slot, process in enumerate(self.processes):
            if process is not None and process.poll() is not None:
                self.crashes += 1
                self.spawn(slot)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in self._logs:
            log.close()
