from __future__ import annotations

from redis.crc import key_slot

from bridge.models import ThreadKey
from bridge.store import keys


def test_every_per_thread_key_shares_one_cluster_slot() -> None:
    thread = ThreadKey("desk", "acme", "support", "ticket {42}: refund")
    per_thread = [
        keys.record(thread),
        keys.inbox(thread),
        keys.seen(thread, "m1"),
        keys.lease(thread),
        keys.turn(thread),
        keys.posted(thread),
        keys.create_claim(thread),
    ]
    assert len({key_slot(k.encode()) for k in per_thread}) == 1


def test_keys_start_with_the_thread_hash_tag() -> None:
    assert keys.record(ThreadKey("slack", "T1", "C1", "1700.1")) == "{slack:T1:C1:1700.1}:conv"


def test_dedupe_claims_outlive_platform_retry_windows() -> None:
    assert keys.SEEN_TTL_SECONDS >= 3 * 3600
