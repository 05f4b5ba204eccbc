"""Syslog headers, stream framing and line cleaning: pure, byte by byte."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.lines import LineFramer, clean
from ingest.syslog import parse_line


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_rfc5424_every_field() -> None:
    line = parse_line(
        "<165>1 2026-08-09T06:07:46.123456+02:00 web1.example.com sshd 9911 ID47 "
        '[exampleSDID@32473 iut="3" eventSource="App\\"lication\\]"][origin ip="10.0.0.1"] '
        "\ufeffFailed password for root from 198.51.100.7 port 22 ssh2"
    )
    assert (line.facility, line.severity) == (20, 5)
    assert (line.host, line.program, line.pid, line.msgid) == (
        "web1.example.com",
        "sshd",
        "9911",
        "ID47",
    )
    assert line.timestamp == ts("2026-08-09T06:07:46.123456+02:00")
    assert line.structured_data == {
        "exampleSDID@32473": {"iut": "3", "eventSource": 'App"lication]'},
        "origin": {"ip": "10.0.0.1"},
    }
    assert line.message == "Failed password for root from 198.51.100.7 port 22 ssh2"  # BOM gone


def test_rfc5424_nilvalues() -> None:
    line = parse_line("<14>1 - - - - - - a message")
    assert (line.host, line.program, line.timestamp, line.structured_data) == ("", "", None, {})
    assert line.message == "a message"
    assert parse_line("<14>1 2026-08-09T06:07:46Z h a p m -").message == ""


@pytest.mark.parametrize(
    ("text", "host", "program", "pid", "message"),
    [
        (
            "<38>Aug  9 06:07:46 web1 sshd[9911]: Failed password for invalid user postgres from 198.51.100.7 port 44321 ssh2",
            "web1",
            "sshd",
            "9911",
            "Failed password for invalid user postgres from 198.51.100.7 port 44321 ssh2",
        ),
        ("<13>Aug 19 10:00:00 sshd: no host here", "", "sshd", "", "no host here"),
        (
            "Aug  9 06:07:46 web1 kernel: Out of memory: Killed process 1234 (java) total-vm:8123456kB",
            "web1",
            "kernel",
            "",
            "Out of memory: Killed process 1234 (java) total-vm:8123456kB",
        ),
        ("Aug  9 06:07:46 web1 a message with no tag", "web1", "", "", "a message with no tag"),
        ("just some application output", "", "", "", "just some application output"),
    ],
)
def test_rfc3164_and_file_lines(text: str, host: str, program: str, pid: str, message: str) -> None:
    line = parse_line(text)
    assert (line.host, line.program, line.pid, line.message) == (host, program, pid, message)
    assert line.timestamp is None  # no year, no zone: not trusted


def test_times_with_a_zone_are_read_without_one_not() -> None:
    with_zone = parse_line("2026-08-09T06:07:46.5Z web1 sshd[1]: x")
    assert with_zone.timestamp == ts("2026-08-09T06:07:46.500000+00:00")
    assert parse_line("2026-08-09T06:07:46 web1 sshd[1]: x").timestamp is None


def test_a_pri_out_of_range_is_message_text() -> None:
    line = parse_line("<999>Aug  9 06:07:46 web1 sshd: x")
    assert line.facility is None and line.message.startswith("<999>")


def test_clean_replaces_bad_utf8_and_nul() -> None:
    assert clean(b"ok \xff\xfe and \x00 nul\r") == "ok \ufffd\ufffd and \ufffd nul"
    assert clean("Grüße".encode()) == "Grüße"


def test_framer_newlines_across_chunks() -> None:
    f = LineFramer(100)
    assert f.feed(b"one\ntw") == [(b"one", False)]
    assert f.feed(b"o\r\nthree") == [(b"two\r", False)]
    assert f.flush() == [(b"three", False)]
    assert f.flush() == []


def test_framer_cuts_long_lines_and_keeps_going() -> None:
    f = LineFramer(8)
    out = f.feed(b"0123456789abcdef")  # no newline yet: nothing, and only 8 bytes kept
    assert out == []
    assert f.feed(b"ghij\nnext\n") == [(b"01234567", True), (b"next", False)]


def test_framer_octet_counting_mixed_with_newlines() -> None:
    f = LineFramer(100, octet_counting=True)
    stream = b"11 hello\nworld<13>newline framed\n5 abcde"
    out = f.feed(stream[:4]) + f.feed(stream[4:])
    assert out == [(b"hello\nworld", False), (b"<13>newline framed", False), (b"abcde", False)]


def test_framer_octet_count_over_the_limit_is_cut_and_the_rest_skipped() -> None:
    f = LineFramer(4, octet_counting=True)
    assert f.feed(b"10 0123456789") == [(b"0123", True)]
    assert f.feed(b"3 abc") == [(b"abc", False)]


def test_framer_a_length_split_across_reads() -> None:
    f = LineFramer(100, octet_counting=True)
    assert f.feed(b"1") == []
    assert f.feed(b"2 ") == []
    assert f.feed(b"twelve bytes") == [(b"twelve bytes", False)]


def test_framer_digits_without_a_space_are_a_newline_framed_line() -> None:
    f = LineFramer(100, octet_counting=True)
    assert f.feed(b"2026-08-09T06:07:46Z host app: x\n") == [
        (b"2026-08-09T06:07:46Z host app: x", False)
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 60), st.integers(64, 128))
def test_framer_holds_at_most_a_line_and_never_invents_bytes(
    data: bytes, split: int, limit: int
) -> None:
    f = LineFramer(limit, octet_counting=True)
    out = f.feed(data[:split]) + f.feed(data[split:]) + f.flush()
    for line, truncated in out:
        assert len(line) <= limit
        assert truncated or line in data
    assert len(f._buf) == 0 and len(f._frame) == 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses(text: str) -> None:
    line = parse_line(text)
    assert isinstance(line.message, str)
