"""Summarise a py-spy profile (`py-spy record -f raw`): the top functions by self time
(samples with the function on top) and by total time (samples with it anywhere on the
stack), as shares of the samples kept.

    py-spy record -r 250 -f raw -o core.raw -- python -m bench.measure core
    python -m bench.profile core.raw --under feed        # only the timed work
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

__all__ = ["summarise"]

_LINE = re.compile(r":\d+\)$")


def _frame(raw: str) -> str:
    """`f (path/file.py:12)` -> `f (file.py)`: one entry per function, not per line."""
    name, _, where = raw.partition(" (")
    file = _LINE.sub("", where).rstrip(")").rsplit("/", 1)[-1]
    return f"{name} ({file})"


def summarise(text: str, under: str | None = None, top: int = 20) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    kept = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if under is not None:
            cut = next((i for i, f in enumerate(frames) if f.split(" (")[0] == under), None)
            if cut is None:
                continue
            frames = frames[cut:]
        n = int(count)
        kept += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    out = [f"{kept:,} samples" + (f" under {under}" if under else "")]
    for title, counts in (("self", own), ("total", total)):
        out.append(f"-- by {title} time")
        out += [f"{100 * n / kept:5.1f}%  {f}" for f, n in counts.most_common(top)]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("raw", help="py-spy record -f raw output")
    p.add_argument("--under", help="keep only stacks through this function, from it down")
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args()
    with open(args.raw) as f:
        print(summarise(f.read(), args.under, args.top))


if __name__ == "__main__":
    main()
