"""Prometheus metrics, in a registry of their own so tests and several bridges never collide."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

M = TypeVar("M", bound=MetricWrapperBase)


class Labelled(Generic[M]):
    """A labelled metric whose children are looked up once: prometheus_client's `labels()`
    validates and locks on every call (~2.5 µs), several times per turn."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """Every metric the bridge exports; `render()` gives the text exposition for /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Labelled(
            Counter(
                "bridge_messages_in_total",
                "Inbound platform messages by what the bridge did with them.",
                ["platform", "outcome"],
                registry=r,
            )
        )
        self.messages_out = Labelled(
            Counter(
                "bridge_messages_out_total",
                "Messages posted to platforms (agent answers, notices).",
                ["platform", "kind"],
                registry=r,
            )
        )
        self.turn_seconds = Labelled(
            Histogram(
                "bridge_turn_seconds",
                "Time from taking a thread's pending messages to the last reply posted.",
                ["platform"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.agent_seconds = Histogram(
            "bridge_agent_seconds",
            "Time spent waiting for Engage Smarter within a turn.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead_seconds = Histogram(
            "bridge_overhead_seconds",
            "Turn time minus agent time: what the bridge itself costs per turn.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.agent_retries = Counter(
            "bridge_agent_retries_total",
            "Engage Smarter requests repeated by the client (safe to repeat), plus turn rounds "
            "run again after an unknown outcome (reconciled with the history first).",
            registry=r,
        )
        self.duplicates_dropped = Labelled(
            Counter(
                "bridge_duplicates_dropped_total",
                "Inbound deliveries dropped because the platform message was already stored.",
                ["platform"],
                registry=r,
            )
        )
        self.dead_letters = Labelled(
            Counter(
                "bridge_dead_letters_total",
                "Turns given up after the last retry and stored as dead letters.",
                ["platform"],
                registry=r,
            )
        )
        self.queue_depth = Gauge(
            "bridge_queue_depth",
            "Threads waiting for a worker (scheduling entries not yet processed).",
            registry=r,
        )
        self.threads_recovered = Counter(
            "bridge_threads_recovered_total",
            "Threads taken over from a worker that stopped mid-turn.",
            registry=r,
        )
        self.turns_restarted = Labelled(
            Counter(
                "bridge_turns_restarted_total",
                "Turns started again on a batch whose earlier turn did not finish.",
                ["platform"],
                registry=r,
            )
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
