"""The one rule of the core: incidents depend only on the alerts and their times.

A generated stream is a list of arrival instants, each holding a few records (new
alerts, re-sends, resolves; some late, some out of order, some from the future) and,
between instants, silences being added and expired. The same stream is fed twice:

- one instant per `Engine.process` call, no tick until the end;
- cut into batches at random instant boundaries, every instant's records shuffled, and
  `tick` called at random times between arrivals (as the live pipeline does when its
  queue runs empty).

Every incident event must be identical in both runs -- key, kind, reason, sequence,
alerts, changes, and every event-time stamp -- but for the two processing-time fields
(`processed_at`, `incident.detected_at`). Every correlation type is loaded at once,
with inhibition, `resolve.quiet` and hysteresis, so their timers interleave.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from correlate import Engine, EngineConfig
from correlate.suppress import Silence
from ingest.fingerprint import fingerprint_labels
from rules import RuleSet
from rules.schema import (
    Absence,
    Condition,
    EventCount,
    Group,
    IncidentSpec,
    ResolveSpec,
    Rule,
    Temporal,
    TemporalOrdered,
    ValueCount,
)
from stormwatch.wire import Alert, Duration, IncidentEvent, encode_hook
from tests.support import T0

EXAMPLES = 400
"""Enough to find a cut-dependent bug: each of the faults the time model fixed (a batch
re-sorted by startsAt, timers ticking only between batches, batch-time stamps) fails
within the first few dozen examples."""


def _rules() -> RuleSet:
    d = Duration
    return RuleSet(
        rules=(
            Rule(
                name="burst",
                correlation=EventCount(
                    group_by=["service"], timespan=d(60), condition=Condition(gte=3)
                ),
                incident=IncidentSpec(severity="P3"),
            ),
            Rule(
                name="crit",
                match=['alertname="A"'],
                correlation=EventCount(
                    group_by=["service"], timespan=d(30), condition=Condition(gte=1)
                ),
                incident=IncidentSpec(severity="P1"),
                resolve=ResolveSpec(quiet=d(200)),
            ),
            Rule(
                name="flap",
                match=['alertname=~"B|C"'],
                correlation=EventCount(
                    group_by=["service", "alertname"], timespan=d(90), condition=Condition(gte=2)
                ),
                resolve=ResolveSpec(condition=Condition(lte=0), timespan=d(120)),
            ),
            Rule(
                name="too-quiet",
                match=['alertname="D"'],
                correlation=EventCount(
                    group_by=["service"], timespan=d(100), condition=Condition(lt=2)
                ),
            ),
            Rule(
                name="vc",
                correlation=ValueCount(
                    group_by=["service"],
                    timespan=d(60),
                    condition=Condition(gte=3, field="alertname"),
                ),
            ),
            Rule(name="is-e", match=['alertname="E"']),
            Rule(name="is-f", match=['alertname="F"']),
            Rule(
                name="tmp",
                correlation=Temporal(group_by=["service"], timespan=d(120), rules=["is-e", "is-f"]),
            ),
            Rule(
                name="ord",
                correlation=TemporalOrdered(
                    group_by=["service"], timespan=d(120), rules=["is-f", "is-e"]
                ),
            ),
            Rule(
                name="heartbeat",
                match=['alertname="E"'],
                correlation=Absence(group_by=["service"], timespan=d(150)),
            ),
            Rule(
                name="grp",
                match=['alertname=~"C|D"'],
                correlation=Group(
                    group_by=["service"],
                    group_wait=d(20),
                    group_interval=d(45),
                    repeat_interval=d(300),
                ),
            ),
        )
    )


CONFIG = EngineConfig(
    resolve_timeout=Duration(120),
    allowed_lateness=Duration(300),
    update_interval=Duration(10),
    duplicates_interval=Duration(30),
    retention=Duration(400),
    max_alerts_per_incident=4,
)


@dataclass
class Instant:
    at: float
    records: list[Alert]
    action: tuple[str, str] | None = None
    """("add", silence id) or ("expire", silence id), applied just before the records."""


def _alert(
    name: str, service: str, *, a: float, lag: float, status: str, end: float | None
) -> Alert:
    labels = {"alertname": name, "service": service}
    return Alert(
        source="alertmanager",
        fingerprint=fingerprint_labels(labels),
        status=status,  # type: ignore[arg-type]
        labels=labels,
        starts_at=a - lag,
        ends_at=end,
        received_at=a,
    )


@st.composite
def streams(draw: st.DrawFn) -> list[Instant]:
    n = draw(st.integers(1, 30))
    t, out = T0, []
    for _ in range(n):
        t += draw(st.sampled_from([0.5, 1, 3, 10, 25, 60, 130, 400]))
        records = []
        for _ in range(draw(st.integers(1, 4))):
            name = draw(st.sampled_from("ABCDEF"))
            service = draw(st.sampled_from(["x", "y"]))
            kind = draw(st.sampled_from(["firing"] * 5 + ["resolved"]))
            lag = draw(st.sampled_from([0, 0, 0, 4, 40, 500, -30]))  # late, and from the future
            if kind == "resolved":
                end = draw(st.sampled_from([None, t, t - 5]))
            else:
                end = draw(st.sampled_from([None, None, t + 50]))
            records.append(_alert(name, service, a=t, lag=lag, status=kind, end=end))
        action = draw(
            st.sampled_from([None] * 6 + [("add", "s1"), ("add", "s2"), ("expire", "s1")])
        )
        out.append(Instant(at=t, records=records, action=action))
    return out


def _act(eng: Engine, action: tuple[str, str], at: float) -> list[IncidentEvent]:
    verb, sid = action
    if verb == "add":
        matchers = ['service="x"'] if sid == "s1" else ['alertname="B"']
        silence = Silence(id=sid, matchers=matchers, starts_at=at, ends_at=at + 70)
        return eng.add_silence(silence, at).events
    fx = eng.expire_silence(sid, at)
    return fx.events if fx is not None else []


def _signature(e: IncidentEvent) -> Any:
    """The event as builtins, without its two processing-time fields."""
    doc = msgspec.to_builtins(e, enc_hook=encode_hook)
    doc.pop("processed_at", None)
    doc["incident"].pop("detected_at", None)
    return doc


def _one_instant_per_call(stream: list[Instant], end: float) -> list[Any]:
    eng = Engine(_rules(), CONFIG)
    out: list[IncidentEvent] = []
    for inst in stream:
        if inst.action is not None:
            out += _act(eng, inst.action, inst.at - 0.25)
        out += eng.process(inst.records, inst.at).events
    out += eng.tick(end).events
    return [_signature(e) for e in out]


def _cut_shuffled_and_ticked(stream: list[Instant], end: float, rnd: random.Random) -> list[Any]:
    eng = Engine(_rules(), CONFIG)
    out: list[IncidentEvent] = []
    batch: list[Alert] = []
    last = 0.0

    def flush() -> None:
        nonlocal batch
        if batch:
            # processing time: any later moment; only processing-time fields may see it
            out.extend(eng.process(batch, batch[-1].received_at + rnd.random()).events)
            batch = []

    for inst in stream:
        action_at = inst.at - 0.25
        # a boundary before an action (it happens between instants) or at random
        if inst.action is not None or rnd.random() < 0.4:
            flush()
            start = max(last, eng.state.clock)
            stop = action_at if inst.action is not None else inst.at
            for _ in range(rnd.randrange(3)):
                if stop > start:  # a tick strictly before the next arrival
                    start = rnd.uniform(start, stop)
                    if start < stop:
                        out.extend(eng.tick(start).events)
            if inst.action is not None:
                out += _act(eng, inst.action, action_at)
        batch.extend(rnd.sample(inst.records, len(inst.records)))
        last = inst.at
    flush()
    out += eng.tick(end).events
    return [_signature(e) for e in out]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), seed=st.integers(0, 2**32 - 1))
def test_incident_events_do_not_depend_on_batching_ticks_or_order_within_an_instant(
    stream: list[Instant], seed: int
) -> None:
    end = stream[-1].at + 5000
    expect = _one_instant_per_call(stream, end)
    got = _cut_shuffled_and_ticked(stream, end, random.Random(seed))
    assert got == expect
