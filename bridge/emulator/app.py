"""`create_app()`: the Engage Smarter emulator as a FastAPI app (OpenAPI at /openapi.json)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bridge.emulator.faults import Faults
from bridge.emulator.middleware import FaultMiddleware
from bridge.emulator.records import ApiUser
from bridge.emulator.routes import admin as admin_routes
from bridge.emulator.routes import agents, conversations, runs, tags
from bridge.emulator.state import EmulatorState
from bridge.emulator.strict import StrictJsonBodies


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # Clients always parse a JSON object body, even for a 500.
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


def create_app(
    state: EmulatorState | None = None,
    *,
    faults: Faults | None = None,
    api_keys: Mapping[str, ApiUser] | None = None,
    admin: bool = False,
) -> FastAPI:
    """A fresh emulator; pass `state`/`faults` to keep references for inspection.

    `api_keys` maps extra API keys to their user and organisation (added to the defaults).
    `admin` serves the unauthenticated test controls under /_emulator/ (reset, faults, state):
    tests and benchmarks turn it on; the emulator `run` mounts never has it.

    Where the contract leaves a choice, the emulator takes the "likely" reading:
    - paging: `limit` 1..100 (default 20), `offset` >= 0; out of range is a 422;
    - chat with `return_inputs`: the saved inputs come first, then the outputs;
    - status messages are streamed only, never stored; info messages are stored and returned;
    - an unknown agent in chat is a 404; `agents/validate` answers `fail`;
    - messages added without chat share a fresh run id that is not recorded as a run;
    - conversations of another organisation are 404, like unknown ones.
    """
    state = state if state is not None else EmulatorState()
    for api_key, user in (api_keys or {}).items():
        state.add_user(api_key, user)
    faults = faults if faults is not None else Faults()
    app = FastAPI(
        title="Engage Smarter emulator",
        version="1",
        # The official SDK sends JSON bodies without a Content-Type header: parse them anyway.
        strict_content_type=False,
        exception_handlers={Exception: _internal_error},
    )
    app.state.emulator = state
    app.state.faults = faults
    for module in (agents, conversations, runs, tags):
        app.include_router(module.router)
    if admin:
        app.include_router(admin_routes.router)
    app.add_middleware(FaultMiddleware, faults=faults)
    # Outside the faults: a malformed body is refused before any fault plan is drawn.
    app.add_middleware(StrictJsonBodies)
    return app
