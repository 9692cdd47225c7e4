"""Errors raised by the Engage Smarter client.

    BridgeError                       (bridge/errors.py)
    └── EngageError                   anything that went wrong talking to Engage Smarter
        ├── EngageTransportError      no usable HTTP response (after any retries)
        │   ├── EngageConnectError    the server could not be reached: nothing was sent
        │   └── EngageTimeoutError    a connect, read, write or pool timeout
        ├── EngageStatusError         a non-2xx answer: `status_code`, `detail`, `context`
        │   ├── BadRequest            400
        │   ├── Unauthorized          401  wrong or missing API key
        │   ├── Forbidden             403  wrong org id, or not allowed
        │   ├── NotFound              404
        │   ├── MethodNotAllowed      405
        │   ├── AlreadyExists         409
        │   ├── Unprocessable         422  the request did not match the schema
        │   ├── RateLimited           429  `retry_after` seconds, when the server said
        │   └── ServerError           5xx
        ├── EngageProtocolError       a 2xx whose body is not what the contract describes
        ├── EngageStreamError         the chat stream reported an error event or sent garbage
        └── OutcomeUnknown            a non-repeatable request may or may not have taken effect
            └── ChatOutcomeUnknown    ... and that request was a chat

`OutcomeUnknown` is raised `from` the underlying transport or status error, instead of
retrying, whenever repeating the request could do it twice (a read timeout, a 5xx, a stream
that broke mid-way). See `bridge/engage/client.py` for how the caller reconciles.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import BridgeError


class EngageError(BridgeError):
    """Base of every Engage Smarter failure."""


class EngageTransportError(EngageError):
    """The request got no usable HTTP response."""


class EngageConnectError(EngageTransportError):
    """The connection could not be made, so the request never reached the server."""


class EngageTimeoutError(EngageTransportError):
    """A timeout: connect, read, write or waiting for a pooled connection."""


class EngageStatusError(EngageError):
    """The server answered with a non-2xx status.

    `detail` is the body's FastAPI-style `detail` (or the raw text); `context` follows the
    official SDK: `detail` itself when it is an object, else `{"response": detail}`.
    """

    def __init__(self, status_code: int, detail: Any = None) -> None:
        self.status_code = status_code
        self.detail = detail
        self.context: dict[str, Any] = detail if isinstance(detail, dict) else {"response": detail}
        super().__init__(f"Engage Smarter answered {status_code}: {detail!r}")


class BadRequest(EngageStatusError):
    """400."""


class Unauthorized(EngageStatusError):
    """401: the API key is missing or unknown."""


class Forbidden(EngageStatusError):
    """403: the org id is wrong for this key, or the call is not allowed."""


class NotFound(EngageStatusError):
    """404."""


class MethodNotAllowed(EngageStatusError):
    """405."""


class AlreadyExists(EngageStatusError):
    """409."""


class Unprocessable(EngageStatusError):
    """422: the request did not match the server's schema."""


class RateLimited(EngageStatusError):
    """429; `retry_after` is the server's requested pause in seconds, if it gave one."""

    def __init__(self, status_code: int, detail: Any = None, retry_after: float | None = None):
        super().__init__(status_code, detail)
        self.retry_after = retry_after


class ServerError(EngageStatusError):
    """5xx."""


class EngageProtocolError(EngageError):
    """A 2xx response whose body does not have the contract's shape."""


class EngageStreamError(EngageError):
    """The chat stream sent an error event (truthy `"error"` key) or an unreadable event.

    The user messages of that chat were probably stored: reconcile as for `ChatOutcomeUnknown`.
    """


class OutcomeUnknown(EngageError):
    """A request that must not be repeated blindly may or may not have reached the server."""


class ChatOutcomeUnknown(OutcomeUnknown):
    """A chat may or may not have stored the user messages and produced an answer."""


_BY_STATUS: dict[int, type[EngageStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: AlreadyExists,
    422: Unprocessable,
}


def status_error(
    status_code: int, detail: Any, retry_after: float | None = None
) -> EngageStatusError:
    """The error for a non-2xx status (pure: no I/O)."""
    if status_code == 429:
        return RateLimited(status_code, detail, retry_after)
    if 500 <= status_code <= 599:
        return ServerError(status_code, detail)
    return _BY_STATUS.get(status_code, EngageStatusError)(status_code, detail)
