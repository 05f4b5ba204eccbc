"""`_in_order`'s narrowed sort keys give the order of the full key, `_order`: arrival,
event time, fingerprint, status, endsAt (None as 0), whatever the batch shares."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from correlate.engine import _in_order, _order
from stormwatch.wire import Alert
from tests.support import T0, alert

_records = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f"]),  # few names: fingerprints repeat
        st.sampled_from([0.0, 0.0, 1.0, 2.0]),  # event times, often shared
        st.sampled_from([0.0, 0.0, 5.0]),  # arrivals, mostly one instant
        st.sampled_from(["firing", "resolved"]),
        st.sampled_from([None, 30.0, 60.0]),
    ),
    max_size=12,
)


def _batch(records: list[tuple[str, float, float, str, float | None]]) -> list[Alert]:
    return [
        msgspec.structs.replace(
            alert(name, status=status, ends_at=ends),
            starts_at=T0 + start,
            received_at=T0 + 10 + arrival,
        )
        for name, start, arrival, status, ends in records
    ]


@given(_records)
def test_the_order_is_the_full_keys(
    records: list[tuple[str, float, float, str, float | None]],
) -> None:
    batch = _batch(records)
    assert list(_in_order(batch)) == sorted(batch, key=_order)


@given(st.lists(st.sampled_from("abcdefghij"), unique=True, min_size=2), st.booleans())
def test_distinct_fingerprints_of_one_instant(names: list[str], one_start: bool) -> None:
    batch = _batch(
        [(n, 0.0 if one_start else float(i % 3), 0.0, "firing", None) for i, n in enumerate(names)]
    )
    assert list(_in_order(batch)) == sorted(batch, key=_order)
