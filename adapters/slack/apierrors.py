"""What a failed Slack Web API call said: its error code, or that its answer was not Slack's."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

# slack_sdk puts the raw HTTP response (which has no `get`) on the error when an answer's body
# is not JSON: a gateway's HTML page, a body cut short. Whether Slack acted is unknown.
UNEXPECTED_ANSWER = "unexpected_answer"


def error_code(exc: SlackApiError) -> str | None:
    """Slack's `error` field (None when the answer has none), or UNEXPECTED_ANSWER."""
    get = getattr(exc.response, "get", None)
    if not callable(get):
        return UNEXPECTED_ANSWER
    error = get("error")
    return None if error is None else str(error)
