"""The inbox encoding of messages round-trips every field, the adapter's context included."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.codec import decode_message, encode_message
from bridge.models import Attachment, InboundMessage, ThreadKey
from bridge.threadmap import conversation_data


def message(**overrides: object) -> InboundMessage:
    values: dict[str, object] = {
        "thread": ThreadKey("slack", "T1", "D1", "1700.000001"),
        "message_id": "D1:1700.000002",
        "user_id": "U1",
        "text": "hi",
        "sent_at": datetime(2026, 1, 2, tzinfo=UTC),
        "attachments": (Attachment("a.py", "https://files/a.py", "text/x-python", 20),),
        "context": (("slack_context_channel_id", "C9"),),
    }
    values.update(overrides)
    return InboundMessage(**values)  # type: ignore[arg-type]


def test_a_message_round_trips_with_its_context() -> None:
    original = message()
    assert decode_message(encode_message(original)) == original


def test_messages_stored_before_context_existed_decode_without_it() -> None:
    raw = encode_message(message()).replace(',"context":[["slack_context_channel_id","C9"]]', "")
    assert decode_message(raw).context == ()


def test_context_reaches_conversation_data_but_never_overrides_the_cores_fields() -> None:
    data = conversation_data(message(context=(("thread_key", "forged"), ("extra", "yes"))))
    assert data["thread_key"] == "slack:T1:D1:1700.000001"
    assert data["extra"] == "yes"
