"""Roles in the config, the receiver's partitioning, and the outbox's in-flight event."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from sinks.outbox import Pending, absorb_into
from stormwatch.config import load_config
from stormwatch.errors import ConfigError, RuleError
from stormwatch.receiver import partition_of
from stormwatch.wire import Incident, IncidentEvent


def _write(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    return cfg


def test_a_split_role_needs_partitioning_and_a_correlator_needs_redis(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "role: receiver\n"), env={})
    assert err.value.field == "$.partitioning"
    part = "partitioning: {bootstrap: 'k:9092'}\n"
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "role: correlator\n" + part), env={})
    assert err.value.field == "$.state.backend"
    cfg = load_config(_write(tmp_path, part), env={"STORMWATCH_ROLE": "receiver"})
    assert cfg.role == "receiver" and cfg.partitioning is not None
    assert cfg.partitioning.instance_id == ""
    named = load_config(_write(tmp_path, part), env={"STORMWATCH_INSTANCE_ID": "pod-2"})
    assert named.partitioning is not None and named.partitioning.instance_id == "pod-2"


def test_the_receiver_places_a_value_where_kafka_places_that_key() -> None:
    partitions = list(range(6))
    kafka = DefaultPartitioner()
    for value in ("checkout", "db", "", "svc-0042"):
        assert partition_of(value, 6) == kafka(value.encode(), partitions, partitions)


def _event(kind: str, sequence: int) -> IncidentEvent:
    inc = Incident(
        key="inc-1",
        rule="r",
        group={},
        category="availability",
        title="t",
        severity="P2",
        status="open",
        first_seen=1.0,
        last_seen=1.0,
        opened_at=1.0,
    )
    return IncidentEvent(event=kind, at=1.0, reason="", sequence=sequence, incident=inc)  # type: ignore[arg-type]


def test_nothing_folds_into_an_event_in_flight_so_it_is_resent_as_it_was() -> None:
    opened, updated = _event("opened", 1), _event("updated", 2)
    waiting = Pending(key="inc-1", events=[opened], enqueued_at=0.0)
    folded, _ = absorb_into({"inc-1": waiting}, [updated], 1.0)
    assert [(e.event, e.sequence) for e in folded["inc-1"].events] == [("opened", 2)]
    in_flight = Pending(key="inc-1", events=[opened], enqueued_at=0.0, inflight=1)
    kept, _ = absorb_into({"inc-1": in_flight}, [updated], 1.0)
    assert [(e.event, e.sequence) for e in kept["inc-1"].events] == [
        ("opened", 1),
        ("updated", 2),
    ]


def test_the_scaleout_deploy_configs_load_and_their_rules_fit_the_shard_key() -> None:
    from correlate.suppress import InhibitRule
    from rules import load_rules
    from stormwatch.roles import check_shard_key
    from tests.conftest import ROOT

    deploy = ROOT / "deploy/scaleout"
    receiver = load_config(deploy / "receiver.yaml", env={})
    correlator = load_config(deploy / "correlator.yaml", env={})
    assert (receiver.role, correlator.role) == ("receiver", "correlator")
    assert correlator.partitioning is not None
    assert correlator.partitioning.session_timeout >= 6  # Apache Kafka's least
    ruleset = load_rules([str(deploy / "rules.yaml")])
    assert len(ruleset) == 2
    check_shard_key(ruleset, correlator.partitioning.shard_key, [InhibitRule()])
    with pytest.raises(RuleError, match="namespace-wide-degradation"):
        check_shard_key(load_rules([str(ROOT / "rules/defaults/monitoring.yaml")]), "service", [])


def test_config_check_names_a_rule_that_does_not_fit_the_shard_key(tmp_path: Path) -> None:
    from stormwatch.app import DEFAULT_RULES
    from stormwatch.preflight import preflight

    cfg = load_config(
        _write(
            tmp_path, "role: receiver\npartitioning: {bootstrap: 'k:9092', shard_key: cluster}\n"
        ),
        env={},
    )
    problems = [str(p) for p in preflight(cfg, DEFAULT_RULES)]
    assert any("'service-alert-burst'" in p and "shard key 'cluster'" in p for p in problems)


def test_the_kubernetes_scaleout_has_a_workload_and_a_budget_per_role(tmp_path: Path) -> None:
    import yaml

    from tests.conftest import ROOT

    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/scaleout.yaml").read_text()))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("PodDisruptionBudget") == 2
    assert {"Deployment", "StatefulSet", "ConfigMap"} <= set(kinds)
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            (container,) = d["spec"]["template"]["spec"]["containers"]
            assert container["resources"]["limits"]["memory"].endswith("Mi")
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    for name, text in cm["data"].items():
        role = load_config(_write(tmp_path, text), env={}).role
        assert role == name.removesuffix(".yaml")
