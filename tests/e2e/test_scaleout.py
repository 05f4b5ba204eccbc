"""Scale-out end to end: three correlator processes on a 6-partition topic, one killed
with SIGKILL mid-stream and a fourth joining late, give exactly the incidents of one
correlator reading the same topic (bench/scaleout.py; the full run is 200,000 alerts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scaleout import scaleout

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


async def test_replicas_with_a_kill_and_a_late_join_equal_one_process(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    f = await scaleout(
        kafka_bootstrap,
        redis_url,
        alerts=20_000,
        services=300,
        span=300.0,
        workdir=tmp_path,
        limit=120.0,
    )
    assert f["sent"] == 20_000
    assert f["killed_at"] < f["joined_at"] < f["messages"]
    assert f["incidents"] > 100  # every service bursts, and pairs open too
    assert f["incidents_only_shared"] == f["incidents_only_single"] == 0
    assert f["incidents_differing"] == 0 and f["incidents_equal"]
    assert f["tracked_equal"]
    assert f["alerts_counted_single"] == f["alerts_counted_shared"] == 20_000
    assert f["alerts_lost"] == 0
    assert f["sink_shared"]["opened_twice"] == f["sink_single"]["opened_twice"] == 0
    assert f["sink_shared"]["incidents_opened"] == f["incidents"]
    assert f["sink_final_equal"]
    assert f["outbox_left_shared"] == f["outbox_left_single"] == 0
