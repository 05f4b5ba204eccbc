"""`stormwatch replay` gives the same incident events however its input is batched, and
the same keys as a restarted daemon fed the same re-sends."""

from __future__ import annotations

import hashlib
import io
import json

from bench.workload import Workload, rules
from correlate import Engine, EngineConfig
from rules import RuleSet, load_rules
from stormwatch.app import DEFAULT_RULES
from stormwatch.backtest import compare
from stormwatch.replay import replay
from tests.support import T0, alert, count_rule

N = 100_000
ARCHIVE = [a for r in Workload(seed=7).requests(N) for a in r]


def _events_without_processing_times(out: bytes) -> list[bytes]:
    lines = []
    for line in out.splitlines():
        doc = json.loads(line)
        doc.pop("processed_at", None)
        doc["incident"].pop("detected_at", None)
        lines.append(json.dumps(doc, sort_keys=True).encode())
    return lines


def test_a_100k_archive_replays_to_byte_identical_events_at_any_batch_size() -> None:
    ruleset = RuleSet(rules=load_rules([DEFAULT_RULES]).rules + rules(50).rules)
    digests, stats = {}, {}
    for size in (1, 10, 1_000, 100_000):
        buf = io.BytesIO()
        stats[size] = replay(ARCHIVE, ruleset, out=buf, batch_size=size)
        events = _events_without_processing_times(buf.getvalue())
        digests[size] = (len(events), hashlib.sha256(b"\n".join(events)).hexdigest())
    assert len(set(digests.values())) == 1, digests
    s = stats[1]
    # The workload really has storms, resolves and timers in it.
    assert s.alerts == N and s.opened > 100 and s.resolved > 100, s


def test_replaying_in_batches_differs_from_one_call_per_alert_only_in_processing_times() -> None:
    ruleset = RuleSet(rules=(count_rule("burst", gte=5),))
    by_one, by_all = io.BytesIO(), io.BytesIO()
    replay(ARCHIVE[:20_000], ruleset, out=by_one, batch_size=1)
    replay(ARCHIVE[:20_000], ruleset, out=by_all, batch_size=20_000)
    raw_one, raw_all = by_one.getvalue().splitlines(), by_all.getvalue().splitlines()
    assert raw_one and len(raw_one) == len(raw_all)
    assert _events_without_processing_times(by_one.getvalue()) == (
        _events_without_processing_times(by_all.getvalue())
    )


def test_a_restart_on_memory_state_fed_the_same_resends_gives_the_same_keys() -> None:
    ruleset = RuleSet(rules=(count_rule("burst", gte=5, timespan=60),))
    config = EngineConfig(resolve_timeout=3600)
    storm = [alert(f"A{i}", t=i, service="checkout") for i in range(5)]
    first = Engine(ruleset, config)
    opened = [e for a in storm for e in first.process([a], a.received_at).events]
    assert [e.event for e in opened] == ["opened"]
    # The process restarts with empty memory; Prometheus re-sends what still fires a
    # minute later, with the same startsAt, in one request.
    import msgspec

    later = [msgspec.structs.replace(a, received_at=T0 + 70) for a in storm]
    restarted = Engine(ruleset, config)
    again = restarted.process(later, T0 + 70).events
    assert [e.event for e in again] == ["opened"]
    assert again[0].incident.key == opened[0].incident.key
    assert again[0].incident.opened_at == opened[0].incident.opened_at == T0 + 4


def test_a_backtest_of_a_raised_threshold_reads_as_dropped_and_changed() -> None:
    old = RuleSet(rules=(count_rule("burst", gte=5, timespan=60),))
    new = RuleSet(rules=(count_rule("burst", gte=10, timespan=60),))
    before = replay(ARCHIVE, old, batch_size=1_000)
    after = replay(ARCHIVE, new, batch_size=1_000)
    result = compare(after.incidents.values(), before.incidents.values())
    diff = result.rules["burst"]
    assert diff.old == len(before.incidents) and diff.new == len(after.incidents)
    # Every incident at 10 is one of those at 5, opened later or holding more alerts.
    assert diff.added == []
    assert len(diff.dropped) == diff.old - diff.new > 0
    assert diff.changed and all(c.opened_delta_s >= 0 for c in diff.changed)
    assert len(diff.changed) + diff.unchanged == diff.new
