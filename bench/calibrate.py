"""How fast this machine is right now, in the unit ../shared/PERF-NOTES.md uses: the
cost of `hash(tuple(sorted(labels.items())))` over 7 labels (0.6 us on the machine
PERF-NOTES was measured on). The machines these figures come from ran 2x apart from one
session to the next (bench/README.md, "Compiled core"); `bench.targets` prints this
beside every run, so a figure from another day can be scaled before it is compared.

    python -m bench.calibrate
"""

from __future__ import annotations

import timeit

__all__ = ["REFERENCE_US", "label_hash_us"]

REFERENCE_US = 0.6
"""PERF-NOTES' figure for the same block."""


def label_hash_us() -> float:
    """Microseconds a call, the best of five runs of 200,000 (about half a second)."""
    labels = {f"k{i}": f"value{i}" for i in range(7)}
    runs = timeit.repeat(
        "hash(tuple(sorted(labels.items())))", globals={"labels": labels}, number=200_000, repeat=5
    )
    return min(runs) / 200_000 * 1e6


def main() -> None:
    us = label_hash_us()
    print(
        f"label-set hash {us:.3f} us ({REFERENCE_US} on PERF-NOTES' machine: {REFERENCE_US / us:.2f}x)"
    )


if __name__ == "__main__":
    main()
