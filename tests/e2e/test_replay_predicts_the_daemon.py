"""A backtest SREs can trust: replaying what the live daemon archived gives the incidents
the daemon opened and resolved, with the same keys and event times."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from bench.load import bodies_for
from rules import load_rules
from stormwatch.app import DEFAULT_RULES
from stormwatch.replay import open_inputs, read_alerts, replay


def _opened_and_resolved(lines: list[dict[str, Any]], until: float) -> list[tuple[Any, ...]]:
    return sorted(
        (e["event"], e["incident"]["key"], e["incident"]["rule"], e["at"])
        for e in lines
        if e["event"] in ("opened", "resolved") and e["at"] <= until
    )


def test_replaying_the_archive_predicts_what_the_daemon_opened_and_resolved(
    daemon_factory: Any, tmp_path: Path
) -> None:
    archive = tmp_path / "archive" / "alerts.jsonl"
    config = tmp_path / "stormwatch.yaml"
    config.write_text(
        f"ingest:\n  archive: {{path: {archive}, max_bytes: 400000, keep: 20}}\n"
        "tick_interval: 200ms\n"
    )
    daemon = daemon_factory("--config", str(config))
    # 4,000 records of the seeded workload (storms, bursts, resolves), their event times
    # squeezed into the last ten minutes, sent as Prometheus sends them.
    for body in bodies_for(4_000, 100, 600.0):
        status, answer, _ = daemon.post("/api/v2/alerts", body)
        assert status == 200, answer
    assert daemon.stop() == 0
    live = [json.loads(line) for line in daemon.jsonl.read_text().splitlines()]

    files = sorted(
        archive.parent.iterdir(), key=lambda p: -int(p.suffix[1:]) if p.suffix != ".jsonl" else 0
    )
    assert len(files) > 1, "the archive rotated"
    alerts = list(read_alerts(open_inputs([str(f) for f in files])))
    assert len(alerts) == 4_000
    out = io.BytesIO()
    stats = replay(alerts, load_rules([DEFAULT_RULES]), out=out)
    replayed = [json.loads(line) for line in out.getvalue().splitlines()]
    # The daemon went on ticking after the last request until it stopped; replay ends at
    # the last arrival. Everything up to then must agree exactly.
    until = alerts[-1].received_at
    expect = _opened_and_resolved(replayed, until)
    assert stats.opened > 10 and any(e[0] == "resolved" for e in expect)
    assert _opened_and_resolved(live, until) == expect
