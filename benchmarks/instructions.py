"""Hot path in instructions per span (callgrind), for A/B checks that a busy box cannot blur.

Run: ``.venv/bin/python benchmarks/instructions.py`` (needs ``valgrind``).
For each core (this process's, then the pure one with ``HARN_TRACE_PURE=1``)
and each workload, it runs itself under ``valgrind --tool=callgrind`` twice,
with N and with 0 repetitions, and prints ``(Ir(N) - Ir(0)) / spans``: the
interpreter start-up and imports cancel out, so what is left is the cost of
the spans alone, and it does not depend on the load of the machine (the
hash seed is fixed, so repeated runs agree to a few instructions).

Workloads (a collector current, nobody listening for events):

* ``api``: ``span_start`` outer, ``span_start`` inner + one
  ``span_set_metadata``, ``span_close`` both (the nested pair of spans.py);
* ``with``: the same pair as ``with span(...)`` + ``handle.set_metadata``;
* ``root``: one root span opened and closed (``collector.open`` /
  ``close``): the branch a root takes, where the cores look for a foreign
  parent;
* ``event``: ``collector.record_event`` on an open span (per event).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 4_000
WORKLOADS = ("api", "with", "root", "event")
SPANS_PER_REP = {"api": 2, "with": 2, "root": 1, "event": 1}


def _workload(name: str, reps: int) -> None:
    import harn_async_trace as h

    collector = h.SpanCollector(max_spans=10 * N + 10)
    with h.use_collector(collector):
        if name == "api":
            start, setm, close = h.span_start, h.span_set_metadata, h.span_close
            for _ in range(reps):
                outer = start("pipeline", "outer")
                inner = start("step", "inner")
                setm(inner, "k", 1)
                close(inner)
                close(outer)
        elif name == "with":
            span = h.span
            for _ in range(reps):
                with span("pipeline", "outer"), span("step", "inner") as handle:
                    handle.set_metadata("k", 1)
        elif name == "root":
            open_, close_ = collector.open, collector.close
            for _ in range(reps):
                close_(open_("step", "root"))
        elif name == "event":
            holder = collector.open("step", "holder")
            record = collector.record_event
            for _ in range(reps):
                record(holder, "e", None)
            collector.close(holder)


def _instructions(name: str, reps: int, pure: bool) -> int:
    # A fixed hash seed: string hashes (dict probes, set layouts) vary run to
    # run otherwise, and so would the counts, by a few percent.
    env = dict(os.environ, PYTHONHASHSEED="0")
    if pure:
        env["HARN_TRACE_PURE"] = "1"
    else:
        env.pop("HARN_TRACE_PURE", None)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--run", name, str(reps)],
        env=env, capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(found.group(1))


def main() -> None:
    import harn_async_trace as h

    cores = [("compiled", False)] if h.accelerated else []
    cores.append(("pure", True))
    print(f"instructions per span (callgrind, {N} reps minus 0)")
    print("| core | " + " | ".join(WORKLOADS) + " |")
    print("|---|" + "---:|" * len(WORKLOADS))
    for label, pure in cores:
        cells = []
        for name in WORKLOADS:
            full = _instructions(name, N, pure)
            empty = _instructions(name, 0, pure)
            cells.append(f"{(full - empty) / (N * SPANS_PER_REP[name]):,.0f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--run":
        sys.path.insert(0, str(ROOT))
        _workload(sys.argv[2], int(sys.argv[3]))
    else:
        main()
