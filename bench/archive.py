"""Write the seeded workload as an alert archive for `stormwatch replay`.

python -m bench.archive 1000000 > /tmp/alerts.jsonl             # Alert lines
python -m bench.archive 1000000 --alertmanager > /tmp/am.jsonl  # Alertmanager API objects
"""

from __future__ import annotations

import argparse
import sys

import msgspec
import orjson

from bench.workload import Workload
from stormwatch.wire import iso8601


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("n", type=int)
    p.add_argument(
        "--alertmanager",
        action="store_true",
        help="Alertmanager API objects instead of Alert lines",
    )
    p.add_argument("--duplicate-ratio", type=float, default=0.8)
    args = p.parse_args()
    out = sys.stdout.buffer
    enc = msgspec.json.Encoder()
    for a in Workload(duplicate_ratio=args.duplicate_ratio).alerts(args.n):
        if args.alertmanager:
            out.write(
                orjson.dumps(
                    {
                        "labels": a.labels,
                        "annotations": a.annotations,
                        "startsAt": iso8601(a.starts_at),
                    }
                )
                + b"\n"
            )
        else:
            out.write(enc.encode(a) + b"\n")


if __name__ == "__main__":
    main()
