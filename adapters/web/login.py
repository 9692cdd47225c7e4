"""Signing in with the operator token (ENGAGE_BRIDGE_WEB_TOKEN): one form, one HttpOnly cookie."""

from __future__ import annotations

import logging
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.web.pages import layout
from adapters.web.ratelimit import RateLimiter
from adapters.web.session import Sessions
from bridge.guard import form_fields

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 4096
ATTEMPTS_PER_WINDOW = 10
WINDOW_SECONDS = 300


def safe_next(target: str | None) -> str:
    # Only a path on this site: an open redirect would make the sign-in page a phishing tool.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/operator"


def login_page(target: str, problem: str | None = None, *, has_token: bool = True) -> str:
    if not has_token:
        body = (
            '<div class="panel section login"><h2>Sign in</h2><p>No operator token is set: '
            "these pages are open on loopback only. Set <code>ENGAGE_BRIDGE_WEB_TOKEN</code> "
            "to use them from elsewhere.</p></div>"
        )
        return layout("Sign in", "", body)
    error = f'<p class="error" role="alert">{escape(problem)}</p>' if problem else ""
    body = (
        '<div class="panel section login"><h2>Sign in</h2>'
        "<p>Enter the operator token (<code>ENGAGE_BRIDGE_WEB_TOKEN</code>).</p>"
        f'{error}<form method="post" action="/web/login">'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<label>Token <input type="password" name="token" autocomplete="current-password" '
        'required autofocus></label> <button class="primary" type="submit">Sign in</button>'
        "</form></div>"
    )
    return layout("Sign in", "", body)


class Login:
    def __init__(self, sessions: Sessions, limiter: RateLimiter) -> None:
        self._sessions = sessions
        self._limiter = limiter

    async def show(self, request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        page = login_page(target, has_token=self._sessions.has_token)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def submit(self, request: Request) -> Response:
        form = form_fields(await request.body())
        target = safe_next(form.get("next"))
        client = request.client.host if request.client else "unknown"
        wait = await self._limiter.retry_after(
            f"login:{client}", ATTEMPTS_PER_WINDOW, WINDOW_SECONDS
        )
        if wait:
            problem = f"Too many attempts: try again in {wait} s."
            return HTMLResponse(login_page(target, problem), status_code=429)
        if not self._sessions.token_matches(form.get("token", "")):
            log.warning("operator sign-in refused: wrong token")
            return HTMLResponse(login_page(target, "Wrong token."), status_code=401)
        response = RedirectResponse(target, status_code=303)
        await self._sessions.sign_in(response, request)
        log.info("operator signed in")
        return response

    async def sign_out(self, request: Request) -> Response:
        response = RedirectResponse("/web/login", status_code=303)
        self._sessions.sign_out(response)
        return response
