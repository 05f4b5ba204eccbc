"""A correlator's sink health is the sum of its shards' outboxes."""

from __future__ import annotations

from stormwatch.delivery import merge_health


def _row(pending: int, age: float, breaker: str, dead: int = 0) -> dict[str, object]:
    return {
        "sink": "jira",
        "type": "jira",
        "pending_incidents": pending,
        "pending_events": pending * 2,
        "oldest_pending_age_s": age,
        "breaker": breaker,
        "dead_letters": dead,
    }


def test_counts_add_up_and_the_oldest_wait_and_worst_breaker_are_kept() -> None:
    merged = merge_health(
        [[_row(3, 10.0, "closed")], [_row(4, 50.0, "open", 1)], [_row(0, 0.0, "half_open")]]
    )
    assert merged == [
        {
            "sink": "jira",
            "type": "jira",
            "pending_incidents": 7,
            "pending_events": 14,
            "oldest_pending_age_s": 50.0,
            "breaker": "open",
            "dead_letters": 1,
        }
    ]


def test_no_shards_held_is_no_rows() -> None:
    assert merge_health([]) == []
