"""The correlator takes the next batch while the last one commits: commits stay one at a
time and in order, a sender hears 200 only once its batch is stored, and a commit that
fails or is refused as a delta loses neither state nor events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from correlate.delta import StateDelta
from stormwatch.errors import StoreReset, StoreUnavailable
from stormwatch.metrics import Metrics
from stormwatch.pipeline import Pipeline
from stormwatch.wire import Alert, IncidentEvent
from tests.support import alert, count_rule, engine


class Store:
    """The pipeline's commit: records each call; `hold` keeps the next one waiting,
    `fail` makes the next ones raise."""

    def __init__(self) -> None:
        self.commits: list[tuple[bool, list[tuple[str, str]], set[str]]] = []
        self.hold: asyncio.Event | None = None
        self.waiting = False
        self.fail: list[Exception] = []
        self.active = 0

    async def __call__(self, events: list[IncidentEvent], delta: StateDelta) -> None:
        self.active += 1
        assert self.active == 1, "two commits at once"
        try:
            if self.hold is not None:
                self.waiting = True
                await self.hold.wait()
                self.hold, self.waiting = None, False
            if self.fail:
                raise self.fail.pop(0)
            opened = [(e.event, e.incident.group["service"]) for e in events]
            self.commits.append((delta.full, opened, set(delta.tracked)))
        finally:
            self.active -= 1


class Archive:
    def __init__(self) -> None:
        self.names: list[str] = []

    def write(self, alerts: list[Alert]) -> None:
        self.names += [a.labels["service"] for a in alerts]


async def until(what: str, check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


async def _second_in_flight_third_correlated(
    store: Store, failure: Exception
) -> tuple[Pipeline, Archive, asyncio.Task[None], asyncio.Future[None], asyncio.Future[None]]:
    archive = Archive()
    pipeline = Pipeline(engine(count_rule(gte=1)), store, Metrics(), archive=archive)
    runner = asyncio.create_task(pipeline.run())
    await pipeline.submit([alert("A", service="a")])
    store.hold, store.fail = asyncio.Event(), [failure]
    second = asyncio.ensure_future(pipeline.submit([alert("B", service="b")]))
    await until("the second batch commits", lambda: store.waiting)
    third_alert = alert("C", service="c")
    third = asyncio.ensure_future(pipeline.submit([third_alert]))
    tracked = pipeline.engine.state.tracked
    await until("the third batch is correlated", lambda: third_alert.fingerprint in tracked)
    assert not second.done() and not third.done()  # neither is stored yet
    assert store.hold is not None
    store.hold.set()
    return pipeline, archive, runner, second, third


async def test_a_commit_refused_as_a_delta_is_written_whole_with_the_batch_after_it() -> None:
    store = Store()
    _, archive, runner, second, third = await _second_in_flight_third_correlated(
        store, StoreReset("not as we saved it", retry_after_s=0)
    )
    await asyncio.gather(second, third)  # both answered 200, once stored
    full, events, _ = store.commits[-1]
    # The whole state as of the third batch, with the events of both: no incident is
    # stored without its `opened`.
    assert full and events == [("opened", "b"), ("opened", "c")]
    assert archive.names == ["a", "b", "c"]
    runner.cancel()


async def test_a_failed_commit_is_retried_with_the_batch_after_it_and_only_its_senders_hear_503() -> (
    None
):
    store = Store()
    _, archive, runner, second, third = await _second_in_flight_third_correlated(
        store, StoreUnavailable("redis down")
    )
    with pytest.raises(StoreUnavailable):
        await second
    await third
    full, events, tracked = store.commits[-1]
    assert not full and events == [("opened", "b"), ("opened", "c")]
    fps = {a.fingerprint for a in (alert("B", service="b"), alert("C", service="c"))}
    assert fps <= tracked  # the failed batch's state went with the next one
    assert archive.names == ["a", "c"]  # B's sender heard 503 and sends it again
    runner.cancel()


@pytest.mark.parametrize("last_commit", ["lands", "fails"])
async def test_a_correlator_stopped_while_the_last_batch_commits_keeps_the_next_batchs_events(
    last_commit: str,
) -> None:
    """Shutdown cancels the correlator while it waits for the last commit, the batch
    after that one correlated but not committed: `save` must commit its events with its
    state (and the last batch's too, if its commit failed)."""
    store = Store()
    failure = StoreUnavailable("redis down")
    pipeline, _, runner, second, third = await _second_in_flight_third_correlated(store, failure)
    if last_commit == "lands":
        store.fail = []
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    with pytest.raises(Exception):  # noqa: B017 - shutting down (429) or the outage (503)
        await third
    if last_commit == "lands":
        await second
    else:
        with pytest.raises(StoreUnavailable):
            await second
    await pipeline.save()
    _, events, tracked = store.commits[-1]
    expected = [("opened", "c")] if last_commit == "lands" else [("opened", "b"), ("opened", "c")]
    assert events == expected
    assert alert("C", service="c").fingerprint in tracked
