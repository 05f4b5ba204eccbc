"""What a function's samples are spent in, from `perf script` output with call stacks.

py-spy over-counts samples in system calls on this machine, and sees a compiled module's
functions only with `--native`; `perf record -e cpu-clock --call-graph dwarf` samples
fairly and names the C functions mypyc generates (`CPyDef_<module>___<function>`):

    perf record -e cpu-clock -F 700 --call-graph dwarf,32768 -p PID -o perf.data -- sleep 6
    perf script -i perf.data > stacks.txt
    python -m bench.perfstacks stacks.txt CPyDef_engine___Engine___process \\
        CPyDef_incidents___IncidentBook___saw_duplicate:2

For each FUNCTION[:DEPTH], the share of all samples that pass through it, and the
callees they go on to (DEPTH frames, inline helpers and wrappers skipped).
"""

from __future__ import annotations

import sys
from collections import Counter

_WRAPPERS = ("Py_", "CPy_", "_Py_", "PyObject_Vectorcall", "_PyObject_Vectorcall", "CPyPy_")


def read_stacks(path: str) -> list[list[str]]:
    """Each sample's frames, leaf first."""
    samples: list[list[str]] = []
    frames: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line[:1] in ("\t", " "):
                parts = line.split()
                if len(parts) >= 2:
                    frames.append(parts[1].split("+")[0])
            elif frames:
                samples.append(frames)
                frames = []
    if frames:
        samples.append(frames)
    return samples


def callees(samples: list[list[str]], function: str, depth: int = 1) -> Counter[str]:
    out: Counter[str] = Counter()
    for frames in samples:
        if function in frames:
            below = [
                f for f in frames[: frames.index(function)][::-1] if not f.startswith(_WRAPPERS)
            ]
            out[" > ".join(below[:depth]) if below else "(self)"] += 1
    return out


def main(argv: list[str]) -> None:
    samples = read_stacks(argv[0])
    n = len(samples) or 1
    print(f"{len(samples)} samples")
    for arg in argv[1:]:
        function, _, depth = arg.partition(":")
        found = callees(samples, function, int(depth or 1))
        print(f"== {function}: {sum(found.values()) / n:.1%}")
        for what, count in found.most_common(20):
            print(f"  {count / n:6.1%} {what}")


if __name__ == "__main__":
    main(sys.argv[1:])
