"""The web pages' static files: playground page, script, styles, icon; shipped as package data."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

STATIC_TYPES = {
    "style.css": "text/css",
    "playground.js": "text/javascript",
    "operator.js": "text/javascript",
    "playground.html": "text/html",
    "favicon.svg": "image/svg+xml",
}
_REVALIDATE = {"Cache-Control": "no-cache"}


def static_file(name: str) -> str:
    # Next to the modules, so pyproject's package-data globs ship them in the wheel.
    return resources.files("adapters.web").joinpath(name).read_text(encoding="utf-8")


async def serve_static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(static_file(name), media_type=STATIC_TYPES[name], headers=_REVALIDATE)


async def favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico whatever the page links; an SVG answers both.
    headers = {"Cache-Control": "max-age=86400"}
    return Response(static_file("favicon.svg"), media_type="image/svg+xml", headers=headers)


async def playground_page(request: Request) -> Response:
    return HTMLResponse(static_file("playground.html"), headers=_REVALIDATE)
