"""A `run` that started its data dir's Redis itself: take over what the last process left.

Every process of a data dir talks to the embedded redis-server on its socket, so a process that
had to start that server knows no other one is alive: every lease in it belongs to a dead
holder, every unacknowledged scheduling entry to a dead worker, and every built-in emulator run
without an answer died mid-way. Waiting for the lease (30 s) and the claim (60 s) to lapse, then
for the dead run's answer (engage_timeout_seconds, 120 s), would leave each thread a restart cut
off silent for minutes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bridge.core import Bridge

if TYPE_CHECKING:  # the emulator is imported only when it runs
    from bridge.emulator.state import EmulatorState

log = logging.getLogger(__name__)


async def take_over(bridge: Bridge) -> None:
    """Before the workers start: their first backlog read runs the adopted threads."""
    dropped, adopted = await bridge.store.adopt_orphans(bridge.workers.consumer)
    if dropped or adopted:
        log.info("taking over %d thread(s) the last run left unfinished", adopted)


def drop_dead_runs(state: EmulatorState) -> None:
    """The retried turns ask the agent again instead of waiting for these runs."""
    if dropped := state.drop_unanswered_runs():
        log.info("emulator: forgot %d run(s) stopped with the last process", dropped)
