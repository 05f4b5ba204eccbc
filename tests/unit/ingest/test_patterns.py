"""Log patterns: which line becomes which alert, with which identity."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ingest.lines import LineIntake
from ingest.patterns import LogPattern, PatternSet
from ingest.syslog import parse_line
from stormwatch.metrics import Metrics
from stormwatch.wire import decode_hook
from tests.support import T0

SSH = {
    "alertname": "SSHLoginFailed",
    "program": "sshd",
    "regex": r"Failed password for (?:invalid user )?(?P<user>\S+) from (?P<src_ip>\S+)",
    "labels": {"service": "ssh"},
    "annotations": {"summary": "failed login for {user} from {src_ip} on {host}"},
}
DISK = {
    "alertname": "DiskFull",
    "severity": "critical",
    "regex": r"No space left on device: (?P<mount>\S+)",
    "resolve": r"Space available again on (?P<mount>\S+)",
    "ttl": "1h",
}
OOM = {
    "alertname": "OOMKill",
    "severity": "high",
    "regex": r"Killed process (?P<pid>\d+) \((?P<comm>[^)]+)\)",
}


def patterns(*specs: dict[str, Any]) -> PatternSet:
    return PatternSet([msgspec.convert(s, LogPattern, dec_hook=decode_hook) for s in specs])


def line_alert(ps: PatternSet, text: str, at: float = T0) -> Any:
    return ps.alert(parse_line(text), text, "syslog", at)


def test_named_groups_static_labels_host_and_program() -> None:
    ps = patterns(SSH)
    a = line_alert(
        ps,
        "<38>Aug  9 06:07:46 web1 sshd[9911]: Failed password for invalid user postgres from 198.51.100.7 port 44321 ssh2",
    )
    assert a.labels == {
        "alertname": "SSHLoginFailed",
        "host": "web1",
        "program": "sshd",
        "service": "ssh",
        "user": "postgres",
        "src_ip": "198.51.100.7",
    }
    assert a.source == "syslog" and a.status == "firing" and a.severity == "warning"
    assert a.starts_at == T0  # RFC 3164 time: not trusted, the arrival is used
    assert a.annotations["summary"] == "failed login for postgres from 198.51.100.7 on web1"
    assert a.annotations["message"].startswith("Failed password for invalid user postgres")


def test_program_filter() -> None:
    ps = patterns(SSH)
    assert (
        line_alert(ps, "<38>Aug  9 06:07:46 web1 other[1]: Failed password for root from 1.2.3.4")
        is None
    )


def test_every_event_line_is_an_occurrence_and_the_same_line_twice_is_one() -> None:
    ps = patterns(SSH)
    text = "<38>1 2026-08-09T06:07:46Z web1 sshd 1 - - Failed password for root from 1.2.3.4 port 1"
    a, b = line_alert(ps, text, T0), line_alert(ps, text, T0 + 5)
    assert a.fingerprint == b.fingerprint  # a re-read, not a new failure
    c = line_alert(ps, text.replace("port 1", "port 2"), T0)
    d = line_alert(ps, text.replace("06:07:46", "06:07:47"), T0)
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3
    assert a.labels == c.labels  # same labels, yet counted separately


def test_a_state_pattern_fires_repeats_and_resolves_by_its_labels() -> None:
    ps = patterns(DISK)
    fired = line_alert(ps, "Aug  9 06:07:46 db1 kernel: No space left on device: /var")
    again = line_alert(ps, "Aug  9 06:08:46 db1 kernel: No space left on device: /var", T0 + 60)
    other = line_alert(ps, "Aug  9 06:08:46 db1 kernel: No space left on device: /srv", T0 + 60)
    ok = line_alert(ps, "Aug  9 06:09:46 db1 kernel: Space available again on /var", T0 + 120)
    assert fired.fingerprint == again.fingerprint == ok.fingerprint != other.fingerprint
    assert fired.severity == "critical"
    assert fired.ends_at == T0 + 3600  # ttl
    assert ok.status == "resolved" and ok.ends_at == T0 + 120


def test_first_matching_pattern_wins_and_unmatched_lines_are_counted() -> None:
    metrics = Metrics()
    intake = LineIntake("file", patterns(OOM, {**OOM, "alertname": "Never"}), metrics)
    lines = [
        (
            b"Aug  9 06:07:46 web1 kernel: Out of memory: Killed process 1234 (java) total-vm:1kB",
            False,
        ),
        (b"Aug  9 06:07:47 web1 kernel: nothing to see", False),
        (b"", False),  # blank: not a line worth counting
        (b"Killed process 99 (bad\xffname) " + b"x" * 10, True),
    ]
    alerts = intake.alerts(lines, T0)
    assert [a.labels["alertname"] for a in alerts] == ["OOMKill", "OOMKill"]
    assert alerts[0].labels["comm"] == "java" and alerts[1].labels["comm"] == "bad\ufffdname"
    sample = metrics.registry.get_sample_value
    assert sample("stormwatch_log_lines_total", {"source": "file", "outcome": "matched"}) == 2
    assert sample("stormwatch_log_lines_total", {"source": "file", "outcome": "unmatched"}) == 1
    assert sample("stormwatch_log_lines_truncated_total", {"source": "file"}) == 1


def test_a_line_time_far_off_is_replaced_by_the_arrival() -> None:
    ps = patterns(OOM)
    a = line_alert(ps, "<11>1 2199-01-01T00:00:00Z h kernel - - - Killed process 1 (x)")
    assert a.starts_at == T0
    b = line_alert(
        ps, "<11>1 2026-08-09T06:07:46Z h kernel - - - Killed process 1 (x)", 1_786_300_000.0
    )
    assert b.starts_at == 1786255666.0


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"alertname": "A", "regex": "("}, "invalid regex"),
        ({"alertname": "A", "regex": "(?P<a>x)", "resolve": "(?P<b>x)"}, "same named groups"),
        ({"alertname": "", "regex": "x"}, "alertname"),
        ({"alertname": "A", "regex": "x", "severity": "page"}, "severity"),
        ({"alertname": "A", "regex": "x", "ttl": "0s"}, "ttl"),
        ({"alertname": "A", "regex": "x", "colour": "red"}, "colour"),
    ],
)
def test_invalid_patterns_are_config_errors(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=problem):
        msgspec.convert(spec, LogPattern, dec_hook=decode_hook)
