"""`absence`: no matching alert for a group within the timespan (a dead man's switch).

Re-sends count: for a heartbeat alert such as Prometheus' `Watchdog`, the re-send every
evaluation interval is the beat. Each arrival moves the group's due time to arrival +
timespan; the queued timer re-queues itself when it comes up early (a moved deadline
costs nothing per re-send). When it is due with no beat since, an incident opens at
that instant, holding no alerts; the next beat resolves it.

```
timespan 5m; Watchdog re-sent every 1m
 clock: 0  1m  2m  3m ........ 8m  ...  9m
        b  b   b   (stops)     due: opens at 8m    b: resolves at 9m
```
"""

from __future__ import annotations

from correlate.reasons import describe_group
from correlate.state import Stamp, Tracked, Window
from correlate.timers import Timer
from correlate.windows.base import Aggregator, Hit

__all__ = ["Absence"]


class Absence(Aggregator):
    lists_window = False
    kind = "absence"
    hears_resends = True
    joins = False

    def _key(self, gkey: str) -> str:
        return self.name + "\x1e" + gkey

    def feed(self, gkey: str, tracked: Tracked, t: Stamp, via: str) -> None:
        self.heartbeat(gkey, tracked)

    def heartbeat(self, gkey: str, tracked: Tracked) -> None:
        ctx = self.ctx
        clock = ctx.state.clock
        last = self.rs.last_seen
        if gkey not in last:
            if len(last) >= ctx.config.max_groups_per_rule:
                capped = ctx.counts.capped_by_rule
                capped[self.name] = capped.get(self.name, 0) + 1
                return
            ctx.timers.at(clock + self.span, Timer.ABSENCE, self._key(gkey))
        last[gkey] = clock
        ctx.changes.rules.add(self.name)
        inc = ctx.book.open_for(self.name, gkey)
        if inc is not None:
            ctx.book.resolve(inc, clock, "a matching alert arrived again")
            ctx.timers.at(clock + self.span, Timer.ABSENCE, self._key(gkey))

    def on_timer(self, kind: Timer, gkey: str, due: float) -> None:
        last = self.rs.last_seen.get(gkey)
        if last is None:
            return
        if last + self.span > due:
            self.ctx.timers.at(last + self.span, Timer.ABSENCE, self._key(gkey))
            return
        if last + self.span < due:
            return  # a stale entry: the timer for this beat already fired
        book = self.ctx.book
        if book.open_for(self.name, gkey) is not None:
            return
        group = self.lr.group_of(gkey)
        why = f"no matching alert for {describe_group(group)} within {self.within}"
        book.open(self.lr, group, gkey, [], key_time=due, at=due, why=why, idle_resolves=False)

    def schedule_from_state(self) -> None:
        for gkey, last in self.rs.last_seen.items():
            if self.ctx.book.open_for(self.name, gkey) is None:
                self.ctx.timers.at(last + self.span, Timer.ABSENCE, self._key(gkey))

    def hit(self, gkey: str, w: Window, t: float, in_order: bool) -> Hit | None:
        return None

    def gc(self, horizon: float) -> None:
        """Absence keeps no window events."""
