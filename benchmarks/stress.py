"""Stress: 100k concurrent traced tasks with nested spans on the virtual loop (issue 10).

Run: ``.venv/bin/python benchmarks/stress.py`` (``BENCH_QUICK=1`` for 10k tasks);
``.venv/bin/python benchmarks/stress.py --fuzz 2000`` runs the reliability fuzz
programs (tests/reliability_programs.py) in bulk and prints their totals.

Each task ``w{i}`` is started with ``traced_spawn`` under one ``pipeline``
span, opens ``outer{i}`` (step), sleeps a virtual 1-5 ms -- at that point
every task is alive and suspended inside its span, which is what "held" means
below -- then opens ``inner{i}`` (fn_call), sleeps again and ends. Every 7th
task is cancelled while it sleeps, every 10th raises inside ``inner``.

Checked on the finished trace, per task, against what the program did:
``misparented`` (``inner{i}``'s parent is not ``outer{i}``, ``outer{i}``'s is
not ``w{i}``, or ``w{i}`` is not a root linked to the pipeline span),
``leaked`` (spans still open, plus spans the program opened that are not in
the trace), ``wrong outcome`` (cancelled/error metadata not matching what
the task did), ``dropped`` (collector overflow) and live span objects left
in memory after the spans were taken.

Baseline, same run: the identical program with tracing disabled (so
``span()`` is a no-op and ``traced_spawn`` is ``create_task``). Each case runs
in a fresh interpreter and reports CPU time and peak RSS growth over the run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, check, machine_line, print_table, quick

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanHandle,
    SpanKind,
    install_override,
    span,
    traced_spawn,
    use_collector,
)
from harn_async_trace.loop import virtual_loop_factory

CANCEL_EVERY = 7
FAIL_EVERY = 10
CAP = 10_000


class WorkerError(Exception):
    """What every FAIL_EVERY-th task raises inside its inner span."""


def _rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _live_spans() -> int:
    """Open spans alive in this process (a leak shows up as a positive delta).

    A handle whose span ended answers ``link()`` with None; a context may
    still hold one (the chain's top), which is not a leak.
    """
    gc.collect()
    return sum(type(o) is SpanHandle and o.link() is not None for o in gc.get_objects())


def stress(
    n: int, *, use_uvloop: bool = False, tracing: bool = True, max_spans: int = 1_000_000
) -> dict[str, Any]:
    """Run ``n`` concurrent tasks with nested spans; return counts of what went wrong.

    Example:
        >>> stress(100)["misparented"]
        0
    """
    live_before = _live_spans()  # other code in this process may hold open spans
    clock = MockClock()
    held = peak = 0
    with install_override(clock):
        collector = SpanCollector(enabled=tracing, max_spans=max_spans)

        async def worker(i: int) -> None:
            nonlocal held, peak
            with span(SpanKind.STEP, f"outer{i}"):
                held += 1
                peak = max(peak, held)
                try:
                    await asyncio.sleep((1 + i % 5) / 1000)
                finally:
                    held -= 1
                with span(SpanKind.FN_CALL, f"inner{i}"):
                    await asyncio.sleep((1 + i % 3) / 1000)
                    if i % FAIL_EVERY == 0:
                        raise WorkerError(f"task {i}")

        async def main() -> None:
            with use_collector(collector), span(SpanKind.PIPELINE, "main"):
                tasks = [traced_spawn(worker(i), name=f"w{i}") for i in range(n)]
                await asyncio.sleep(0.0005)  # every task is now inside outer{i}
                for task in tasks[::CANCEL_EVERY]:
                    task.cancel()
                await asyncio.wait(tasks)
                for task in tasks:
                    if not task.cancelled():
                        task.exception()

        factory = virtual_loop_factory(clock, use_uvloop=use_uvloop)
        rss_before = _rss_kb()
        cpu = time.process_time()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
        cpu = time.process_time() - cpu
        peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    result: dict[str, Any] = {
        "n": n,
        "held": peak,
        "cpu_s": cpu,
        "peak_rss_kb": peak_rss_kb,
        "open": collector.open_span_count(),
        "dropped": collector.dropped_spans,
    }
    spans = collector.take_spans()
    if max_spans >= 3 * n:
        result.update(verify(spans, n, tracing))
    else:  # a capped collector keeps the first max_spans: only count them
        result.update(spans=len(spans), misparented=0, missing=0, wrong_outcome=0)
    del spans
    result["live_span_objects"] = _live_spans() - live_before
    return result


def verify(spans: list[Any], n: int, tracing: bool) -> dict[str, int]:
    """Count misparented, missing and wrongly-ended spans against the program's structure."""
    if not tracing:
        return {"spans": len(spans), "misparented": 0, "missing": 0, "wrong_outcome": 0}
    by_name = {s.name: s for s in spans}
    ids = [s.span_id for s in spans]
    main = by_name.get("main")
    misparented = missing = wrong = 0
    for i in range(n):
        spawned = by_name.get(f"w{i}")
        outer, inner = by_name.get(f"outer{i}"), by_name.get(f"inner{i}")
        cancelled = i % CANCEL_EVERY == 0
        if spawned is None or outer is None or (inner is None and not cancelled):
            missing += 1
            continue
        links = [link.span_id for link in spawned.links]
        if spawned.parent_id is not None or main is None or links != [str(main.span_id)]:
            misparented += 1
        if outer.parent_id != spawned.span_id:
            misparented += 1
        if inner is not None and inner.parent_id != outer.span_id:
            misparented += 1
        if cancelled:
            wrong += outer.metadata.get("cancelled") is not True
            wrong += spawned.metadata.get("status") != "cancelled"
        elif i % FAIL_EVERY == 0:
            wrong += inner is None or inner.metadata.get("error_type") != "WorkerError"
            wrong += spawned.metadata.get("status") != "error"
        else:
            wrong += spawned.metadata.get("status") != "ok" or "error" in outer.metadata
    duplicate_ids = len(ids) - len(set(ids))
    return {
        "spans": len(spans),
        "misparented": misparented,
        "missing": missing + duplicate_ids,
        "wrong_outcome": wrong,
    }


def fuzz_report(examples: int) -> dict[str, Any]:
    """Run ``examples`` random programs (tests/reliability_programs.py) on both loops, replayed.

    Counts programs, nodes, spans checked by kind and outcome, invariant
    violations and replay mismatches (the last two must be 0).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from hypothesis import HealthCheck, given, settings
    from reliability_interpreter import run_program
    from reliability_invariants import check as check_trace
    from reliability_programs import Body, programs, size

    from harn_async_trace.export import span_to_dict

    totals: dict[str, Any] = {"programs": 0, "nodes": 0, "spans": 0, "violations": 0,
                              "replay_mismatches": 0, "runs": 0, "kinds": {}, "outcomes": {}}

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs())
    def fuzz(program: Body) -> None:
        totals["programs"] += 1
        totals["nodes"] += size(program)
        for use_uvloop in (False, True):
            first = run_program(program, use_uvloop=use_uvloop)
            again = run_program(program, use_uvloop=use_uvloop)
            totals["runs"] += 2
            totals["violations"] += len(check_trace(first)) + len(check_trace(again))
            spans = first.collector.spans()
            totals["spans"] += len(spans)
            replayed = [span_to_dict(x) for x in again.collector.spans()]
            if [span_to_dict(x) for x in spans] != replayed:
                totals["replay_mismatches"] += 1
            for x in spans:
                kinds = totals["kinds"]
                kinds[str(x.kind)] = kinds.get(str(x.kind), 0) + 1
                outcome = ("cancelled" if x.metadata.get("cancelled")
                           else "error" if "error_type" in x.metadata else "ok")
                totals["outcomes"][outcome] = totals["outcomes"].get(outcome, 0) + 1

    cpu = time.process_time()
    fuzz()
    totals["cpu_s"] = time.process_time() - cpu
    return totals


def _case(n: int, loop: str, tracing: bool, max_spans: int = 1_000_000) -> dict[str, Any]:
    """One case in a fresh interpreter (clean RSS baseline)."""
    out = subprocess.run(
        [sys.executable, __file__, "--case", str(n), loop, "on" if tracing else "off",
         str(max_spans)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    """Both loops, traced and plain, in fresh interpreters; prints tables and goal lines."""
    n = 10_000 if quick() else 100_000
    print(machine_line())
    for loop in ("asyncio", "uvloop"):
        plain = _case(n, loop, False)
        traced = _case(n, loop, True)
        capped = _case(n, loop, True, max_spans=CAP)
        rows = [
            Row("tasks held at once (plain)", plain["held"], "tasks"),
            Row("tasks held at once (traced)", traced["held"], "tasks"),
            Row("spans recorded", traced["spans"], "spans", f"{traced['spans'] / n:.2f} per task"),
            Row("CPU time plain", plain["cpu_s"], "s"),
            Row("CPU time traced", traced["cpu_s"], "s",
                f"{traced['cpu_s'] / plain['cpu_s']:.2f}x plain"),
            Row("peak RSS growth plain", plain["peak_rss_kb"] / 1024, "MiB",
                f"{plain['peak_rss_kb'] * 1024 / n:,.0f} B/task"),
            Row("peak RSS growth traced", traced["peak_rss_kb"] / 1024, "MiB",
                f"{traced['peak_rss_kb'] * 1024 / n:,.0f} B/task, "
                f"{traced['peak_rss_kb'] / max(plain['peak_rss_kb'], 1):.2f}x plain"),
            Row("peak RSS growth traced, max_spans=10k", capped["peak_rss_kb"] / 1024, "MiB",
                f"kept {capped['spans']:,}, dropped+counted {capped['dropped']:,}"),
        ]
        print_table(f"Stress on virtual {loop} ({n:,} concurrent tasks)", rows)
        for key in ("misparented", "missing", "wrong_outcome", "open", "dropped",
                    "live_span_objects"):
            check(f"{loop}: 0 {key}", traced[key] == 0, f"{key}={traced[key]}")
        check(f"{loop}: all {n:,} tasks held at once", traced["held"] == n,
              f"held={traced['held']}")
        total = traced["spans"]
        check(f"{loop}: capped collector drops exactly the overflow and counts it",
              capped["spans"] == CAP and capped["dropped"] == total - CAP and capped["open"] == 0,
              f"kept {capped['spans']:,} + dropped {capped['dropped']:,} = {total:,} ended")
        extra = (traced["peak_rss_kb"] - plain["peak_rss_kb"]) * 1024 / n
        check(f"{loop}: bounded memory, tracing adds < 4 KiB per held task",
              extra < 4096, f"+{extra:,.0f} B/task over plain, open spans and kept spans included")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--case":
        print(json.dumps(stress(int(sys.argv[2]), use_uvloop=sys.argv[3] == "uvloop",
                                tracing=sys.argv[4] == "on", max_spans=int(sys.argv[5]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "--fuzz":
        report = fuzz_report(int(sys.argv[2]))
        print(machine_line())
        print(json.dumps(report, indent=1, sort_keys=True))
        check("fuzz: 0 invariant violations", report["violations"] == 0,
              f"{report['programs']:,} programs, {report['runs']:,} runs, "
              f"{report['spans']:,} spans checked (first run of each program and loop)")
        check("fuzz: 0 replay mismatches", report["replay_mismatches"] == 0,
              f"{report['replay_mismatches']} mismatches")
    else:
        main()
