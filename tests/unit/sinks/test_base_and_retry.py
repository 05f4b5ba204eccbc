"""The shared status table, Retry-After parsing, the retry policy and the breaker."""

from __future__ import annotations

import random

import pytest

from sinks import BreakerPolicy, RetryPolicy, classify_status, parse_retry_after
from sinks.retry import CircuitBreaker
from stormwatch.errors import RetryableSinkError, SinkError

# (status, outcome): the one table every HTTP sink obeys (Alertmanager's Retrier).
STATUS_TABLE = [
    (200, "ok"),
    (201, "ok"),
    (202, "ok"),
    (204, "ok"),
    (400, "permanent"),
    (401, "permanent"),
    (403, "permanent"),
    (404, "permanent"),
    (409, "permanent"),
    (410, "permanent"),
    (413, "permanent"),
    (422, "permanent"),
    (408, "retryable"),
    (425, "retryable"),
    (429, "retryable"),
    (500, "retryable"),
    (502, "retryable"),
    (503, "retryable"),
    (504, "retryable"),
]


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
def test_status_table(status: int, outcome: str) -> None:
    if outcome == "ok":
        classify_status("s", status)
        return
    with pytest.raises(SinkError) as info:
        classify_status("s", status, "boom")
    assert info.value.retryable is (outcome == "retryable")
    assert info.value.status == status


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    with pytest.raises(RetryableSinkError) as info:
        classify_status("s", 429, "", "7")
    assert info.value.retry_after_s == 7.0


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(initial_backoff=1, max_backoff=8, multiplier=2)
    rng = random.Random(3)
    for attempt, cap in ((1, 1), (2, 2), (3, 4), (4, 8), (10, 8)):
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert min(waits) >= 0 and max(waits) <= cap
        assert max(waits) > cap * 0.8  # jitter spans the whole range


def test_retries_end_by_time_not_by_count() -> None:
    policy = RetryPolicy(deadline=3600)
    assert not policy.gives_up(attempts=10_000, waited_s=3599)
    assert policy.gives_up(attempts=1, waited_s=3600)
    assert RetryPolicy(max_attempts=3).gives_up(attempts=3, waited_s=1)
    assert RetryPolicy().deadline == 86400  # 24 h by default


def test_breaker_opens_after_n_failures_probes_once_per_interval_and_closes() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=3, probe_interval=30))
    assert [b.failure(t) for t in (0, 1)] == [False, False]
    assert b.blocked_until(1) is None
    assert b.failure(2) is True and b.state == "open"
    assert b.blocked_until(10) == 32  # no call until the probe
    assert b.blocked_until(32) is None and b.state == "half_open"
    assert b.failure(32) is True and b.blocked_until(40) == 62  # the probe failed
    assert b.blocked_until(62) is None
    b.success()
    assert b.state == "closed" and b.blocked_until(63) is None and b.opened == 2


def test_breaker_off() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=0))
    assert not any(b.failure(t) for t in range(100)) and b.state == "closed"
