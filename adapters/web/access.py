"""Who may see the web pages: pure decisions on the bind address, Host, Origin and credentials.

The model (README "Security model"):
- bound to loopback with no token: the machine's own browser is the operator (staff), as in the
  zero-configuration `make run`; requests that came through a proxy are not local.
- anywhere else authentication is required (start-up fails without it): the operator token, whose
  cookie makes a browser staff, and/or a trusted authenticating proxy that names the user in a
  header and proves itself with a shared secret (staff: the users listed as staff). Without
  either, nobody gets in, unless `public_playground` lets visitors chat.
- every page checks Host (DNS rebinding) and, on state-changing requests, Origin/Sec-Fetch-Site.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Headers a reverse proxy adds: such a request came from elsewhere, whatever socket it used.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROXY_SECRET_HEADER = "x-engage-bridge-proxy-secret"  # noqa: S105 (a header name)


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


def startup_problem(bind_host: str, has_auth: bool, serves_http: bool) -> str | None:
    """Why the pages must not start as configured, or None."""
    if not serves_http or has_auth or is_loopback(bind_host):
        return None
    shown = bind_host or "all interfaces"
    return (
        f"the web pages would be served on {shown} without authentication: set "
        "ENGAGE_BRIDGE_WEB_TOKEN (16+ characters) or a trusted proxy "
        "(ENGAGE_BRIDGE_WEB_PROXY_USER_HEADER + ENGAGE_BRIDGE_WEB_PROXY_SECRET), or "
        "ENGAGE_BRIDGE_HTTP_HOST=127.0.0.1, "
        "or ENGAGE_BRIDGE_WEB_ENABLED=false"
    )


@dataclass(frozen=True, slots=True)
class ProxyAuth:
    """An authenticating proxy in front (oauth2-proxy, Pomerium, a web server's SSO module): it
    names the user in `user_header` and sends `secret` in PROXY_SECRET_HEADER, because anyone
    reaching the bridge past the proxy could set the user header too."""

    user_header: str
    secret: str
    staff_users: frozenset[str] = frozenset()  # "*": everyone the proxy lets in

    def user(self, headers: Mapping[str, str]) -> str | None:
        given = headers.get(PROXY_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return None
        return headers.get(self.user_header.lower()) or None

    def access_of(self, user: str) -> Access:
        staff = "*" in self.staff_users or user in self.staff_users
        return Access.STAFF if staff else Access.VISITOR


@dataclass(frozen=True, slots=True)
class Policy:
    """The start-up facts every request decision needs."""

    open_locally: bool  # loopback bind and no token: the local browser is staff
    allowed_hosts: frozenset[str]  # lower-case names; "*" accepts any
    public_playground: bool = False
    proxy: ProxyAuth | None = None

    @classmethod
    def build(
        cls,
        *,
        bind_host: str,
        has_token: bool,
        public_url: str | None,
        extra_hosts: Iterable[str] = (),
        public_playground: bool = False,
        proxy: ProxyAuth | None = None,
    ) -> Policy:
        has_auth = has_token or proxy is not None
        hosts = {h.lower() for h in extra_hosts} | LOOPBACK_NAMES
        if public_url and (name := urlsplit(public_url).hostname):
            hosts.add(name.lower())
        if bind_host and not is_loopback(bind_host) and bind_host not in ("0.0.0.0", "::"):
            hosts.add(bind_host.lower())
        if has_auth and not is_loopback(bind_host) and not extra_hosts and not public_url:
            hosts.add("*")  # every request needs credentials anyway; Host adds nothing here
        return cls(
            open_locally=is_loopback(bind_host) and not has_auth,
            allowed_hosts=frozenset(hosts),
            public_playground=public_playground and has_auth,
            proxy=proxy,
        )

    def host_allowed(self, host_header: str) -> bool:
        if "*" in self.allowed_hosts:
            return True
        name = urlsplit(f"//{host_header}").hostname or ""
        return name.lower() in self.allowed_hosts or (self.open_locally and is_loopback(name))

    def access(self, *, client: str | None, headers: Mapping[str, str], operator: bool) -> Access:
        if operator:
            return Access.STAFF
        if self.proxy is not None and (user := self.proxy.user(headers)):
            return self.proxy.access_of(user)
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
