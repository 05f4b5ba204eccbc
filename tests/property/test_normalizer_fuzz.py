"""Every normaliser, fed anything: it returns alerts or raises PayloadError, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.normalize import NORMALIZERS
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from ingest.normalize.mapping import load_mappings
from stormwatch.errors import PayloadError

_SHIPPED = sorted(
    str(p) for p in (Path(__file__).parents[2] / "deploy" / "mappings").glob("*.yaml")
)
ALL = {
    "alertmanager_v2": normalize_alertmanager_v2,
    **NORMALIZERS,
    **load_mappings({}, _SHIPPED, set(NORMALIZERS)),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
alertish = st.lists(
    st.fixed_dictionaries(
        {
            "labels": st.dictionaries(
                st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=3
            )
        },
        optional={
            "startsAt": st.text(max_size=30) | st.integers(),
            "status": st.text(max_size=10),
            "alerts": json_values,
            "rule": json_values,
            "endsAt": st.text(max_size=30),
            "hits": json_values,
            "result": json_values,
            "kibana.alert.rule.name": st.text(max_size=10),
            "title": json_values,
            "date": st.integers() | st.text(max_size=15),
        },
    ),
    max_size=3,
)


def _check(body: bytes) -> None:
    for name, normalize in ALL.items():
        try:
            alerts = normalize(body, 1_790_000_000.0)
        except PayloadError as err:
            assert err.reason in {"invalid_json", "invalid_payload", "too_deep"}, name
        else:
            assert isinstance(alerts, list), name


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(body: bytes) -> None:
    _check(body)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json(value: object) -> None:
    _check(json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(alertish)
def test_alert_shaped_json(value: object) -> None:
    _check(json.dumps(value).encode())
