"""Who may see the web pages: pure decisions on the bind address, Host, Origin and credentials.

The model (README "Security model"):
- bound to loopback with no token: the machine's own browser is the operator (staff), as in the
  zero-configuration `make run`; requests that came through a proxy are not local.
- anywhere else a token is required (start-up fails without one); its cookie makes a browser
  staff. Without it, nobody gets in, unless `public_playground` lets visitors chat.
- every page checks Host (DNS rebinding) and, on state-changing requests, Origin/Sec-Fetch-Site.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Headers a reverse proxy adds: such a request came from elsewhere, whatever socket it used.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(enum.IntEnum):
    NONE = 0
    VISITOR = 1  # chats in the playground, in its own threads
    STAFF = 2  # operator view, staff messages, take over / give back / resolve


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def startup_problem(bind_host: str, has_token: bool, serves_http: bool) -> str | None:
    """Why the pages must not start as configured, or None."""
    if not serves_http or has_token or is_loopback(bind_host):
        return None
    shown = bind_host or "all interfaces"
    return (
        f"the web pages would be served on {shown} without authentication: set "
        "ENGAGE_BRIDGE_WEB_TOKEN (16+ characters), or ENGAGE_BRIDGE_HTTP_HOST=127.0.0.1, "
        "or ENGAGE_BRIDGE_WEB_ENABLED=false"
    )


@dataclass(frozen=True, slots=True)
class Policy:
    """The start-up facts every request decision needs."""

    open_locally: bool  # loopback bind and no token: the local browser is staff
    allowed_hosts: frozenset[str]  # lower-case names; "*" accepts any
    public_playground: bool = False

    @classmethod
    def build(
        cls,
        *,
        bind_host: str,
        has_token: bool,
        public_url: str | None,
        extra_hosts: Iterable[str] = (),
        public_playground: bool = False,
    ) -> Policy:
        hosts = {h.lower() for h in extra_hosts} | LOOPBACK_NAMES
        if public_url and (name := urlsplit(public_url).hostname):
            hosts.add(name.lower())
        if bind_host and not is_loopback(bind_host) and bind_host not in ("0.0.0.0", "::"):
            hosts.add(bind_host.lower())
        if has_token and not is_loopback(bind_host) and not extra_hosts and not public_url:
            hosts.add("*")  # every request needs the token anyway; Host adds nothing here
        return cls(
            open_locally=is_loopback(bind_host) and not has_token,
            allowed_hosts=frozenset(hosts),
            public_playground=public_playground and has_token,
        )

    def host_allowed(self, host_header: str) -> bool:
        if "*" in self.allowed_hosts:
            return True
        name = urlsplit(f"//{host_header}").hostname or ""
        return name.lower() in self.allowed_hosts or (self.open_locally and is_loopback(name))

    def access(self, *, client: str | None, headers: Mapping[str, str], operator: bool) -> Access:
        if operator:
            return Access.STAFF
        proxied = any(name in headers for name in PROXY_HEADERS)
        if self.open_locally and client is not None and is_loopback(client) and not proxied:
            return Access.STAFF
        return Access.VISITOR if self.public_playground else Access.NONE


def same_origin(method: str, headers: Mapping[str, str]) -> bool:
    """False for a browser's cross-site state-changing request (CSRF, a page on a rebound name)."""
    if method.upper() in SAFE_METHODS:
        return True
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser (browsers send Origin on every POST), so no ambient cookie
    # The host only: behind a TLS-terminating proxy the browser says https, the socket http.
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
