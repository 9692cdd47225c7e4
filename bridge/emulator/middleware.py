"""The ASGI middleware that applies fault plans: holds, latency, injected errors, lost responses."""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.emulator.faults import FAULTS_HEADER, PLAN_KEY, FaultPlan, Faults
from bridge.emulator.sse import StreamBroken


def route_path(scope: Scope) -> str:
    """The path inside this app, also when it is mounted under a prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def fault_response(status: int, retry_after: float | None) -> JSONResponse:
    headers = {}
    if retry_after is not None:
        # Fractional seconds are not standard HTTP; they keep retry tests fast.
        headers["Retry-After"] = f"{retry_after:g}"
    return JSONResponse(
        {"detail": f"Injected fault: HTTP {status} from the emulator"},
        status_code=status,
        headers=headers,
    )


class FaultMiddleware:
    """Decides each /v1 request's FaultPlan, leaves it in scope state for the routes, applies it."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        await self.faults.wait_while_held(scope["method"], route_path(scope))
        header = Headers(scope=scope).get(FAULTS_HEADER)
        try:
            plan = self.faults.plan_with_header(scope["method"], route_path(scope), header)
        except ValueError as exc:
            await JSONResponse({"detail": f"bad {FAULTS_HEADER}: {exc}"}, 400)(scope, receive, send)
            return
        scope.setdefault("state", {})[PLAN_KEY] = plan
        await self._apply(plan, scope, receive, send)

    async def _apply(self, plan: FaultPlan, scope: Scope, receive: Receive, send: Send) -> None:
        if plan.latency:
            await asyncio.sleep(plan.latency)
        if plan.fail_status is not None:
            await fault_response(plan.fail_status, plan.retry_after)(scope, receive, send)
            return
        if plan.lose_response_status is None:
            try:
                await self.app(scope, receive, send)
            except StreamBroken:
                # Returning before the response is complete makes the server drop the connection.
                return
            return

        async def discard(message: Message) -> None:
            return None

        await self.app(scope, receive, discard)
        await fault_response(plan.lose_response_status, plan.retry_after)(scope, receive, send)
