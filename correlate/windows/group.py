"""`group`: Alertmanager's aggregation groups as a correlation type.

Every matching alert of a group goes into one incident: it opens `group_wait` after the
group's first alert arrived (on the arrival clock), holding every alert of the group
still firing then; while it is open, later alerts join it. Its `updated` events are
spaced by `group_interval` and it is re-sent every `repeat_interval` (the engine's
update flush and REPEAT timer, with this rule's intervals).

```
group_wait 30s
 clock: 0s  10s  20s        30s
        a   b    c          due: opens with a b c (those still firing)
```
"""

from __future__ import annotations

from correlate.reasons import describe_group
from correlate.state import Tracked, Window
from correlate.timers import Timer
from correlate.windows.base import Aggregator, Hit
from stormwatch.wire import format_duration

__all__ = ["GroupWait"]


class GroupWait(Aggregator):
    lists_window = False
    evicts = False
    kind = "group"

    def _key(self, gkey: str) -> str:
        return self.name + "\x1e" + gkey

    def new_group(self, gkey: str) -> None:
        clock = self.ctx.state.clock
        self.rs.pending[gkey] = clock
        self.ctx.changes.rules.add(self.name)
        self.ctx.timers.at(clock + self.lr.group_wait, Timer.GROUP_WAIT, self._key(gkey))

    def hit(self, gkey: str, w: Window, t: float, in_order: bool) -> Hit | None:
        return None

    def on_timer(self, kind: Timer, gkey: str, due: float) -> None:
        first = self.rs.pending.get(gkey)
        if first is None or first + self.lr.group_wait != due:
            return
        del self.rs.pending[gkey]
        self.ctx.changes.rules.add(self.name)
        w = self.rs.groups.pop(gkey, None)
        self.ctx.changes.groups.add((self.name, gkey))
        if w is None:
            return
        tracked = self.ctx.state.tracked
        seen: dict[str, Tracked] = {}
        for fp in w.fps:
            m = tracked.get(fp)
            if m is not None and m.status == "firing":
                seen.setdefault(fp, m)
        if not seen:
            return
        group = self.lr.group_of(gkey)
        why = (
            f"{len(seen)} alerts grouped by {describe_group(group)} after group_wait "
            f"{format_duration(self.lr.group_wait)}"
        )
        window = [(t, fp, "") for t, fp in zip(w.times, w.fps, strict=True)]
        self.ctx.book.open(
            self.lr,
            group,
            gkey,
            list(seen.values()),
            key_time=w.times[0],
            key_fp=w.fps[0],
            at=due,
            why=why,
            window=window,
        )

    def schedule_from_state(self) -> None:
        for gkey, first in self.rs.pending.items():
            self.ctx.timers.at(first + self.lr.group_wait, Timer.GROUP_WAIT, self._key(gkey))

    def gc(self, horizon: float) -> None:
        """A group's window is emptied when its wait ends, never evicted before."""

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        return f"{n} alerts grouped by {describe_group(group)}"
