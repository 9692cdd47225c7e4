"""The garbage collector tuned once a `run` has started (bridge/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bridge import heap
from bridge.config import Settings


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """The test process's collector as it was found, frozen objects given back."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_settling_freezes_what_exists_and_raises_only_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    alive = [object() for _ in range(10)]
    heap.settle(12_345)
    assert gc.get_threshold() == (12_345, middle, old)
    assert gc.get_freeze_count() >= len(alive)


@pytest.mark.usefixtures("collector_restored")
def test_zero_leaves_the_collector_as_python_set_it() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    heap.settle(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_default_and_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGAGE_BRIDGE_GC_YOUNG_THRESHOLD", raising=False)
    assert Settings(_env_file=None).gc_young_threshold == heap.DEFAULT_YOUNG_THRESHOLD
    monkeypatch.setenv("ENGAGE_BRIDGE_GC_YOUNG_THRESHOLD", "0")
    assert Settings(_env_file=None).gc_young_threshold == 0
