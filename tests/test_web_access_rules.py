"""The web pages' access rules as pure functions: bind address, Host, Origin, who asks."""

from __future__ import annotations

import pytest

from adapters.web.access import (
    Access,
    Policy,
    ProxyAuth,
    is_loopback,
    same_origin,
    startup_problem,
)
from adapters.web.login import safe_next

LOCAL = Policy.build(bind_host="127.0.0.1", has_token=False, public_url=None)
TOKEN_ANYWHERE = Policy.build(bind_host="0.0.0.0", has_token=True, public_url=None)
TOKEN_NAMED = Policy.build(
    bind_host="0.0.0.0", has_token=True, public_url="https://bridge.example.com/"
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.1.2.3", True),
        ("0.0.0.0", False),
        ("", False),
        ("10.0.0.5", False),
        ("bridge.example.com", False),
    ],
)
def test_loopback_addresses(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_only_non_loopback_http_processes_without_a_token_are_refused() -> None:
    assert startup_problem("0.0.0.0", has_auth=False, serves_http=True)
    assert startup_problem("", has_auth=False, serves_http=True)
    assert startup_problem("127.0.0.1", has_auth=False, serves_http=True) is None
    assert startup_problem("0.0.0.0", has_auth=True, serves_http=True) is None
    assert startup_problem("0.0.0.0", has_auth=False, serves_http=False) is None


@pytest.mark.parametrize(
    ("policy", "host", "expected"),
    [
        (LOCAL, "127.0.0.1:8080", True),
        (LOCAL, "localhost:8080", True),
        (LOCAL, "[::1]:8080", True),
        (LOCAL, "evil.example:8080", False),
        (LOCAL, "", False),
        (TOKEN_ANYWHERE, "10.1.2.3:8080", True),
        (TOKEN_NAMED, "bridge.example.com", True),
        (TOKEN_NAMED, "evil.example", False),
    ],
)
def test_host_header_rules(policy: Policy, host: str, expected: bool) -> None:
    assert policy.host_allowed(host) is expected


def test_the_local_browser_is_staff_only_when_open_locally_and_not_proxied() -> None:
    assert LOCAL.access(client="127.0.0.1", headers={}, operator=False) is Access.STAFF
    proxied = {"x-forwarded-for": "203.0.113.9"}
    assert LOCAL.access(client="127.0.0.1", headers=proxied, operator=False) is Access.NONE
    assert TOKEN_ANYWHERE.access(client="127.0.0.1", headers={}, operator=False) is Access.NONE
    assert TOKEN_ANYWHERE.access(client="10.0.0.9", headers={}, operator=True) is Access.STAFF


def test_a_public_playground_needs_a_token_to_exist() -> None:
    public = Policy.build(
        bind_host="0.0.0.0", has_token=True, public_url=None, public_playground=True
    )
    assert public.access(client="10.0.0.9", headers={}, operator=False) is Access.VISITOR
    no_token = Policy.build(
        bind_host="127.0.0.1", has_token=False, public_url=None, public_playground=True
    )
    assert no_token.public_playground is False


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {"origin": "http://evil.example", "host": "127.0.0.1:8080"}, True),
        ("POST", {"host": "127.0.0.1:8080"}, True),
        ("POST", {"origin": "http://127.0.0.1:8080", "host": "127.0.0.1:8080"}, True),
        ("POST", {"origin": "https://bridge.example.com", "host": "bridge.example.com"}, True),
        ("POST", {"origin": "http://evil.example", "host": "127.0.0.1:8080"}, False),
        ("POST", {"origin": "null", "host": "127.0.0.1:8080"}, False),
        ("POST", {"sec-fetch-site": "cross-site", "host": "127.0.0.1:8080"}, False),
        ("POST", {"sec-fetch-site": "same-site", "host": "127.0.0.1:8080"}, False),
    ],
)
def test_state_changing_requests_must_be_same_origin(
    method: str, headers: dict[str, str], expected: bool
) -> None:
    assert same_origin(method, headers) is expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/operator/threads/x", "/operator/threads/x"),
        ("//evil.example", "/operator"),
        ("/\\evil.example", "/operator"),
        ("https://evil.example", "/operator"),
        (None, "/operator"),
    ],
)
def test_sign_in_returns_only_to_paths_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_trusted_proxy_names_the_user_only_with_its_secret() -> None:
    proxy = ProxyAuth("x-forwarded-user", "s" * 20, frozenset({"*"}))
    policy = Policy.build(bind_host="0.0.0.0", has_token=False, public_url=None, proxy=proxy)
    assert not policy.open_locally
    signed = {"x-forwarded-user": "ann", "x-engage-bridge-proxy-secret": "s" * 20}
    assert policy.access(client="10.0.0.2", headers=signed, operator=False) is Access.STAFF
    forged = {"x-forwarded-user": "ann", "x-engage-bridge-proxy-secret": "s" * 19}
    assert policy.access(client="10.0.0.2", headers=forged, operator=False) is Access.NONE
    assert startup_problem("0.0.0.0", has_auth=True, serves_http=True) is None
