"""Fixtures for the emulator: one uvicorn server per session, fresh state and faults per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from bridge.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    OTHER_API_KEY,
    OTHER_ORG_ID,
    EmulatorState,
    Faults,
    ThreadedEmulator,
)
from bridge.emulator.agents import PensionsQuestions


@dataclass(frozen=True)
class Emulator:
    """A running emulator: `.url` is the base URL without /v1."""

    url: str
    api_key: str
    org_id: str
    user_id: str
    other_api_key: str
    other_org_id: str
    state: EmulatorState
    faults: Faults

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key, "X-Org-Id": self.org_id}


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[ThreadedEmulator]:
    server = ThreadedEmulator()
    server.start(timeout=10)
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server: ThreadedEmulator) -> Iterator[Emulator]:
    """A fresh emulator for this test (the server is shared; state and faults start empty)."""
    emulator_server.state.reset()
    emulator_server.faults.reset()
    # The demo agent pauses so people see its status lines; tests want its answers at once
    # (the browser test registers the pausing one again).
    emulator_server.state.register_agent(PensionsQuestions(status_pause=0.0))
    yield Emulator(
        url=emulator_server.url,
        api_key=DEFAULT_API_KEY,
        org_id=DEFAULT_ORG_ID,
        user_id=DEFAULT_USER_ID,
        other_api_key=OTHER_API_KEY,
        other_org_id=OTHER_ORG_ID,
        state=emulator_server.state,
        faults=emulator_server.faults,
    )
    emulator_server.faults.reset()


def hold_chat(emulator: Emulator) -> None:
    """From now on chat calls wait in the emulator before they run (nothing stored yet) until
    `release_chat`: a turn held at a known point, however slow the machine. Wait for it with
    `wait_until(lambda: emulator.faults.held == n)`."""
    emulator.faults.scope = "chat"
    emulator.faults.hold = True


def release_chat(emulator: Emulator, held: int = 1) -> None:
    """Lets the held chat calls go on; `held` of them must still be waiting (so whatever the test
    did meanwhile provably happened while they were held)."""
    assert emulator.faults.held == held
    emulator.faults.hold = False


def hold_answers(emulator: Emulator, runs: int | None = None) -> None:
    """From now on chat calls store their inputs and start their run, and the agent then waits
    just before its answer (after any status texts) until `release_answers`: a turn held while
    the agent works. Wait for it with `wait_until(lambda: emulator.faults.answers_held == n)`.
    `runs`: only the next `runs` runs are held; later ones answer at once."""
    emulator.faults.scope = "chat"
    emulator.faults.answers_to_hold = runs
    emulator.faults.hold_answers = True


def release_answers(emulator: Emulator, held: int = 1) -> None:
    """Lets the held agents answer; `held` of them must still be waiting."""
    assert emulator.faults.answers_held == held
    emulator.faults.hold_answers = False


@pytest.fixture
async def emulator_http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client for the emulator, authenticated as the default user."""
    async with httpx.AsyncClient(base_url=emulator.url, headers=emulator.headers) as client:
        yield client
