"""Memory: bytes per completed span and peak memory for 1M spans (issue 9 (d)).

Run: ``.venv/bin/python benchmarks/memory.py`` (``make bench`` runs it too).

Per span, measured with ``tracemalloc`` (Python allocations only, so the
numbers are exact and independent of allocator caching), in this one
process, next to two baselines: the floor record of ``spans.py`` (a slotted
record plus its metadata dict) and the OpenTelemetry SDK's finished span as
kept by an ``InMemorySpanExporter``.

Per span: retained bytes per *completed* span held by the collector, with
empty metadata and with one key (issue 19's goal: <= 160 B without
metadata, on both cores). GC cost: the CPU time per span of making 200k
finished spans that stay retained, with the cyclic GC on minus off (goal
<= 100 ns: finished spans are plain rows the GC never visits). It measures
this process's core, then runs itself with ``HARN_TRACE_PURE=1``.
Peak: 1M spans (outer/inner pairs) through
one collector with the default ``max_spans`` (all kept) and with
``max_spans=10_000`` (newer ones dropped and counted); the bounded peak must
not grow with the number of spans, so it is also shown at 100k. Each peak
case runs in a fresh interpreter and reports its peak RSS growth over the
loop (sampled RSS): tracemalloc would make the 1M-span runs ~3x slower.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, check, machine_line, print_table, pure_core_run, quick
from spans import _Record

import harn_async_trace as h

STEP, FN_CALL = h.SpanKind.STEP, h.SpanKind.FN_CALL


def retained_per_item(make: Callable[[int], Any], count: int) -> float:
    """Bytes still allocated per item after ``make(count)`` (its result kept alive)."""
    make(min(count, 1_000))  # warm caches, interned names, free lists
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = make(count)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return (after - before) / count


def ours(metadata: bool) -> Callable[[int], Any]:
    """Completed spans held by a collector, made with start/end."""

    def make(count: int) -> Any:
        c = h.SpanCollector(max_spans=count)
        start, end, set_metadata = c.start, c.end, c.set_metadata
        for _ in range(count):
            span_id = start(STEP, "work")
            if metadata:
                set_metadata(span_id, "k", 1)
            end(span_id)
        return c

    return make


def floor(metadata: bool) -> Callable[[int], Any]:
    """The floor record of spans.py, one per span, in a list."""

    def make(count: int) -> Any:
        out = []
        for span_id in range(1, count + 1):
            out.append(_Record(span_id, None, "work", 10**12, 10**4,
                               {"k": 1} if metadata else {}))
        return out

    return make


def otel(metadata: bool) -> Callable[[int], Any]:
    """OpenTelemetry SDK spans held by an InMemorySpanExporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    def make(count: int) -> Any:
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("bench")
        for _ in range(count):
            with tracer.start_as_current_span("work") as span:
                if metadata:
                    span.set_attribute("k", 1)
        return provider, exporter

    return make


def gc_cost_ns(count: int = 200_000, rounds: int = 5) -> tuple[float, float]:
    """CPU ns per span making ``count`` retained spans with the GC on, and with it off."""
    import time

    def once(enabled: bool) -> float:
        gc.collect()
        (gc.enable if enabled else gc.disable)()
        try:
            c = h.SpanCollector(max_spans=count)
            start, close = c.start, c.close
            t0 = time.process_time()
            for _ in range(count):
                close(start(STEP, "work"))
            elapsed = time.process_time() - t0
        finally:
            gc.enable()
        del c
        return elapsed * 1e9 / count

    on = off = float("inf")
    for _ in range(rounds):
        on = min(on, once(True))
        off = min(off, once(False))
    return on, off


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _peak_child(total_spans: int, max_spans: int) -> None:
    """In a fresh interpreter: run the spans, print peak RSS growth as JSON.

    RSS is sampled every 5,000 pairs (``ru_maxrss`` would include the
    interpreter's own start-up peak).
    """
    gc.collect()
    base = peak = _rss_bytes()
    c = h.SpanCollector(max_spans=max_spans)
    start, end, set_metadata = c.start, c.end, c.set_metadata
    for pair in range(total_spans // 2):
        outer = start(STEP, "outer")
        inner = start(FN_CALL, "inner")
        set_metadata(inner, "k", 1)
        end(inner)
        end(outer)
        if pair % 5_000 == 0:
            peak = max(peak, _rss_bytes())
    peak = max(peak, _rss_bytes())
    print(json.dumps([peak - base, len(c.spans()), c.dropped_spans]))


def peak_for(total_spans: int, max_spans: int) -> tuple[float, int, int]:
    """Peak RSS growth while ``total_spans`` spans go through one collector."""
    out = subprocess.run(
        [sys.executable, __file__, "--peak", str(total_spans), str(max_spans)],
        capture_output=True, text=True, check=True,
    ).stdout
    peak, kept, dropped = json.loads(out.strip().splitlines()[-1])
    return float(peak), int(kept), int(dropped)


def main() -> list[str]:
    """Measure, print the tables and the goal lines; then the pure core's (a child run)."""
    core = "compiled" if h.accelerated else "pure"
    print(f"## Memory (benchmarks/memory.py), {core} core")
    print(machine_line())
    small = quick()
    count = 20_000 if small else 100_000
    otel_count = 2_000 if small else 10_000
    total = 100_000 if small else 1_000_000
    bound = 10_000

    rows, per_span = [], {}
    for metadata in (False, True):
        label = "one metadata key" if metadata else "empty metadata"
        ours_b = retained_per_item(ours(metadata), count)
        floor_b = retained_per_item(floor(metadata), count)
        otel_b = retained_per_item(otel(metadata), otel_count)
        per_span[metadata] = ours_b
        rows += [
            Row(f"ours, {label}", ours_b, "B", f"{ours_b / floor_b:.2f}x floor"),
            Row(f"floor record, {label}", floor_b, "B", "1.00x"),
            Row(f"OTel SDK span in InMemorySpanExporter, {label}", otel_b, "B",
                f"{otel_b / ours_b:.1f}x ours"),
        ]
    print_table(f"(d) bytes retained per completed span (tracemalloc, {count:,} spans; "
                f"OTel {otel_count:,})", rows)

    unbounded, kept_all, _ = peak_for(total, max_spans=total)
    bounded, kept, dropped = peak_for(total, max_spans=bound)
    bounded_small, _, _ = peak_for(total // 10, max_spans=bound)
    print_table(
        f"(d) peak RSS growth, {total:,} spans (nested pairs, one key on the inner)",
        [
            Row(f"max_spans={total:,} (all {kept_all:,} kept)", unbounded / 2**20, "MiB",
                f"{unbounded / total:.0f} B/span"),
            Row(f"max_spans={bound:,} ({kept:,} kept, {dropped:,} dropped)",
                bounded / 2**20, "MiB", f"{unbounded / bounded:.0f}x less than unbounded"),
            Row(f"max_spans={bound:,}, {total // 10:,} spans", bounded_small / 2**20, "MiB",
                f"{total:,} spans peak / this = {bounded / bounded_small:.2f}x"),
        ],
    )
    print()
    gc_on, gc_off = gc_cost_ns(20_000 if small else 200_000)
    print_table(
        f"(e) GC cost, {20_000 if small else 200_000:,} finished spans retained "
        "(CPU ns per span, best of 5)",
        [
            Row("GC on", gc_on, "ns", ""),
            Row("GC off", gc_off, "ns", ""),
            Row("GC cost (on minus off)", gc_on - gc_off, "ns", "goal <= 100 ns"),
        ],
    )
    print()
    lines = [
        check(f"{core}: <= 160 bytes per finished span, empty metadata", per_span[False] <= 160,
              f"{per_span[False]:.0f} B; one key {per_span[True]:.0f} B"),
        check(f"{core}: GC cost with spans retained <= 100 ns", gc_on - gc_off <= 100,
              f"{gc_on - gc_off:.0f} ns per span"),
        check("collector memory bounded under max_spans", bounded / bounded_small < 1.5,
              f"peak {bounded / 2**20:.1f} MiB at {total:,} spans vs "
              f"{bounded_small / 2**20:.1f} MiB at {total // 10:,}"),
    ]
    if h.accelerated and "--child" not in sys.argv:
        lines += pure_core_run(__file__)
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak"]:
        _peak_child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
