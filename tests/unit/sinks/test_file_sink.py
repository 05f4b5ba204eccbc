"""The JSONL file sink across a crash: an event it wrote before the drain heard of it
is not written again, and a line torn by the crash is cut off and written whole."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from sinks.file import FileSink, FileSinkConfig
from tests.support_sinks import incident_event


def lines(path: Path) -> list[tuple[str, int, str]]:
    out = []
    for raw in path.read_bytes().splitlines():
        e = json.loads(raw)
        out.append((e["incident"]["key"], e["sequence"], e["event"]))
    return out


async def test_events_already_in_the_files_tail_are_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    first = FileSink(FileSinkConfig(path=str(path)))
    await first.deliver(incident_event("opened", 1, key="a"))
    await first.deliver(incident_event("updated", 2, key="a"))
    await first.deliver(incident_event("opened", 1, key="b"))
    # Killed here: the drain never heard of the last two, and delivers them again.
    restarted = FileSink(FileSinkConfig(path=str(path)))
    await restarted.deliver(incident_event("updated", 2, key="a"))
    await restarted.deliver(incident_event("opened", 1, key="b"))
    await restarted.deliver(incident_event("resolved", 3, key="a"))
    await restarted.deliver(incident_event("opened", 1, key="c"))
    await restarted.close()
    assert lines(path) == [
        ("a", 1, "opened"),
        ("a", 2, "updated"),
        ("b", 1, "opened"),
        ("a", 3, "resolved"),
        ("c", 1, "opened"),
    ]


async def test_a_torn_last_line_is_cut_off_and_its_event_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    whole = msgspec.json.encode(incident_event("opened", 1, key="a")) + b"\n"
    torn = msgspec.json.encode(incident_event("updated", 2, key="a"))[:40]
    path.write_bytes(whole + torn)
    sink = FileSink(FileSinkConfig(path=str(path)))
    await sink.deliver(incident_event("opened", 1, key="a"))  # in the file: skipped
    await sink.deliver(incident_event("updated", 2, key="a"))  # torn: written again
    await sink.close()
    assert lines(path) == [("a", 1, "opened"), ("a", 2, "updated")]


async def test_a_file_not_there_yet_is_created(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "incidents.jsonl"
    sink = FileSink(FileSinkConfig(path=str(path)))
    await sink.deliver(incident_event("opened", 1, key="a"))
    await sink.close()
    assert lines(path) == [("a", 1, "opened")]


async def test_an_event_delivered_again_while_running_is_written_once(tmp_path: Path) -> None:
    """The outbox lost its acknowledgement (Redis went away after the write): the drain
    delivers the same event again, with no restart between."""
    from sinks import file

    path = tmp_path / "incidents.jsonl"
    sink = FileSink(FileSinkConfig(path=str(path)))
    await sink.deliver(incident_event("opened", 1, key="a"))
    await sink.deliver(incident_event("opened", 1, key="a"))
    await sink.deliver(incident_event("updated", 2, key="a"))
    await sink.deliver(incident_event("opened", 1, key="b"))
    await sink.deliver(incident_event("updated", 2, key="a"))
    # Only the most recent RECENT incidents are remembered: the oldest is forgotten first.
    file.RECENT, saved = 2, file.RECENT
    try:
        await sink.deliver(incident_event("opened", 1, key="c"))  # "a" forgotten
        await sink.deliver(incident_event("opened", 1, key="b"))  # remembered: skipped
    finally:
        file.RECENT = saved
    await sink.close()
    assert lines(path) == [
        ("a", 1, "opened"),
        ("a", 2, "updated"),
        ("b", 1, "opened"),
        ("c", 1, "opened"),
    ]
