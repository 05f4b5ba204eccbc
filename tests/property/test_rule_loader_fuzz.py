"""The rule loader, fed anything: it loads or raises RuleError, nothing else."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import load_rules
from stormwatch.errors import RuleError

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=8), v, max_size=3),
    max_leaves=15,
)
rule_like = st.lists(
    st.fixed_dictionaries(
        {"name": st.text(max_size=10)},
        optional={
            "match": st.lists(st.text(max_size=20), max_size=2),
            "correlation": st.fixed_dictionaries(
                {
                    "type": st.sampled_from(
                        ["event_count", "value_count", "temporal", "absence", "group", "x"]
                    )
                },
                optional={
                    "timespan": st.text(max_size=5) | st.integers(),
                    "group-by": values,
                    "condition": values,
                    "rules": values,
                },
            ),
            "incident": values,
            "resolve": values,
        },
    ),
    max_size=3,
)


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.yaml"
        p.write_text(text)
        with contextlib.suppress(RuleError):
            load_rules([p])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(rule_like)
def test_rule_shaped_yaml(rules: object) -> None:
    _load(yaml.safe_dump(rules))
