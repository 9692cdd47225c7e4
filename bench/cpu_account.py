"""CPU time per benchmark component from /proc: who uses the cores during a measured window."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_seconds() -> tuple[float, float]:
    """CPU seconds of all cores since boot: (user + nice + system, irq + softirq + steal).

    Processes' utime/stime add up to the first; the second is charged to no process (softirq
    is where loopback TCP is processed; steal is the hypervisor's).
    """
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system) / CLOCK_TICKS, (irq + softirq + steal) / CLOCK_TICKS


@dataclass
class Snapshot:
    by_component: dict[str, float]
    machine: float
    interrupts: float


@dataclass
class CpuAccount:
    """Components are named groups of pids, e.g. {"bridge": [p1, p2, p3], "redis": [p4]}."""

    components: dict[str, list[int]] = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        by_component = {
            name: sum(process_cpu_seconds(pid) for pid in pids)
            for name, pids in self.components.items()
        }
        return Snapshot(by_component, *machine_seconds())


@dataclass
class CpuUse:
    """CPU seconds used between two snapshots, per component, plus the whole machine's."""

    seconds: dict[str, float]
    machine: float
    interrupts: float

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> CpuUse:
        seconds = {
            name: after.by_component[name] - before.by_component[name]
            for name in before.by_component
        }
        return cls(seconds, after.machine - before.machine, after.interrupts - before.interrupts)

    @property
    def others(self) -> float:
        """User and system time of processes outside the benchmark (others using the machine)."""
        return max(0.0, self.machine - sum(self.seconds.values()))
