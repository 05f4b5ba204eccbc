"""An incident's shared labels narrowed as its listing grows (`narrowed_common`) equal
the shared labels of the whole listing computed afresh (`common_labels`), order
included; a listing that does not begin with the last one is refused (None)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from correlate.state import Kind, Tracked
from correlate.views import common_labels, narrowed_common

_NAMES = ("alertname", "service", "cluster", "instance")


def _alert(i: int, names: tuple[str, ...], values: tuple[str, ...]) -> Tracked:
    kind = Kind(source="alertmanager", severity="warning", generator_url="", labels=names)
    return Tracked(
        fingerprint=f"fp{i}",
        kind=kind,
        values=values,
        starts_at=0.0,
        status="firing",
        event_time=0.0,
        first_seen=0.0,
        last_seen=0.0,
        ends_at=60.0,
    )


@st.composite
def _alerts(draw: st.DrawFn) -> list[Tracked]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        # mostly one schema; sometimes another order or a label missing
        names = draw(st.sampled_from([_NAMES, _NAMES, _NAMES, _NAMES[::-1], _NAMES[:3]]))
        values = tuple(draw(st.sampled_from(["a", "a", "b"])) for _ in names)
        out.append(_alert(i, names, values))
    return out


@given(_alerts(), st.integers(0, 12))
def test_narrowing_a_grown_listing_is_computing_it_afresh(alerts: list[Tracked], cut: int) -> None:
    before = alerts[: min(cut, len(alerts))]
    narrowed = narrowed_common(before, common_labels(before), alerts)
    if not before:
        assert narrowed is None
        return
    assert narrowed is not None
    fresh = common_labels(alerts)
    assert narrowed == fresh
    assert list(narrowed) == list(fresh)  # the first alert's order


@given(_alerts(), st.integers(0, 11))
def test_a_listing_that_does_not_begin_with_the_last_is_refused(
    alerts: list[Tracked], at: int
) -> None:
    if not alerts:
        return
    at %= len(alerts)
    # the same labels, another object: an alert forgotten and firing again
    t = alerts[at]
    replaced = [*alerts[:at], _alert(99, t.kind.labels, t.values), *alerts[at + 1 :]]
    common = common_labels(alerts)
    assert narrowed_common(alerts, common, replaced) is None
    assert narrowed_common(alerts, common, alerts[:-1]) is None
