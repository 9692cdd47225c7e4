"""Every web route passes here: Host and Origin checks, who is asking, security headers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from adapters.web.access import Access, Policy, same_origin
from adapters.web.session import Sessions
from bridge.errors import StorageUnavailable

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    # Thread lists, transcripts and histories must not be kept by a shared cache on the way.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/web/login?next={quote(target, safe='')}"


class Gate:
    def __init__(self, policy: Policy, sessions: Sessions) -> None:
        self.policy = policy
        self.sessions = sessions

    async def who(self, request: Request) -> Access:
        client = request.client.host if request.client else None
        operator = await self.sessions.is_operator(request)
        request.state.signed_in = operator
        return self.policy.access(client=client, headers=request.headers, operator=operator)

    def guard(
        self, endpoint: Endpoint, need: Access = Access.NONE, *, api: bool = False
    ) -> Endpoint:
        """`endpoint` behind the checks; `api` answers JSON errors instead of a login redirect."""

        async def guarded(request: Request) -> Response:
            try:
                response = await self._check(request, endpoint, need, api)
            except StorageUnavailable as exc:
                log.warning("web page without storage: %s", exc)
                response = _refuse(api, 503, "storage unavailable, try again")
            return secured(response)

        return guarded

    async def _check(
        self, request: Request, endpoint: Endpoint, need: Access, api: bool
    ) -> Response:
        if not self.policy.host_allowed(request.headers.get("host", "")):
            # A page on another name that resolves here (DNS rebinding) must not reach the API.
            log.info("web request refused: Host not allowed")
            return _refuse(
                api, 421, "this Host is not served here (ENGAGE_BRIDGE_WEB_ALLOWED_HOSTS)"
            )
        if not same_origin(request.method, request.headers):
            log.info("web request refused: cross-origin %s", request.method)
            return _refuse(api, 403, "cross-origin request refused")
        access = await self.who(request)
        request.state.access = access
        if access < need:
            if not api:
                return RedirectResponse(login_url(request), status_code=303)
            status = 401 if access is Access.NONE else 403
            return _refuse(
                api, status, "sign in with the operator token" if status == 401 else "staff only"
            )
        return await endpoint(request)


def _refuse(api: bool, status: int, message: str) -> Response:
    if api:
        return JSONResponse({"error": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)
