"""Exporters: throughput (spans/s) and peak memory, against baselines in the same run.

Run: ``.venv/bin/python benchmarks/export.py`` (``BENCH_QUICK=1`` for a smoke run).

Workload: a synthetic trace shaped like a VM run -- a pipeline root, then
per "request" a spawn root (linked to the pipeline), an ``fn_call`` child and
an ``llm_call`` grandchild with the usage metadata -- 3 spans per request,
built with a real ``SpanCollector`` under a MockClock.

(a) throughput, contenders interleaved round by round (``_harness.best_ns``):
    * ``write_jsonl`` (streaming) vs the naive baseline
      ``json.dumps([span_to_dict(s) ...])`` (the whole document in memory);
    * ``write_chrome_trace`` (lanes + flow arrows) against the same baseline;
    * the OTel bridge ``export_to_otel`` into an ``InMemorySpanExporter`` vs
      the OTel SDK's own path for the same spans (tracer ``start_span`` with
      the same attributes and links, ``end``, ``SimpleSpanProcessor`` into an
      ``InMemorySpanExporter``).
(b) memory. tracemalloc (the spans are built before tracing starts, so the
    peak is what the exporter adds): 1M in-memory spans to JSONL via
    ``write_jsonl``; the naive baseline and Chrome on 100k spans (tracemalloc
    makes 1M of those too slow for ``make bench``'s 600 s; their peaks grow
    linearly). Peak RSS of a fresh process making 1M spans: streamed live by
    ``JsonlStreamWriter`` (the program drains its collector) vs the baseline
    of keeping every span and dumping the naive document at the end.
"""

from __future__ import annotations

import gc
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, best_ns, check, machine_line, print_table, quick

from harn_async_trace import LlmCallUsage, MockClock, Span, SpanCollector, install_override
from harn_async_trace.export import (
    JsonlStreamWriter,
    export_to_otel,
    span_to_dict,
    write_chrome_trace,
    write_jsonl,
)

_USAGE = LlmCallUsage("gpt-x", "mock", 120, 30, cost_usd=0.0125).metadata_pairs()


def make_requests(c: SpanCollector, clock: MockClock, root: int, count: int) -> None:
    """Record ``count`` requests (3 spans each) on ``c``."""
    link = c.span_link(root)
    links = [link] if link is not None else None
    for i in range(count):
        # A boundary's span: opened off the chain, then bound as the task's chain.
        task = c.open("spawn", "request", links, detached=True, push=False)
        with c.bind(task):
            call = c.start("fn_call", "handle")
            llm = c.start("llm_call", "chat")
            for key, value in _USAGE:
                c.set_metadata(llm, key, value)
            clock.advance_ns(1_000 + i % 7)
            c.end(llm)
            c.end(call)
            c.end(task)


def build_trace(requests: int) -> list[Span]:
    """A pipeline root plus ``requests`` requests, as finished spans."""
    clock = MockClock()
    with install_override(clock):
        c = SpanCollector(max_spans=3 * requests + 1)
        root = c.start("pipeline", "main")
        make_requests(c, clock, root, requests)
        c.end(root)
        return c.take_spans()


def naive_json(spans: list[Span], out: IO[str]) -> None:
    """Baseline: the whole trace as one in-memory list of dicts, dumped at once."""
    out.write(json.dumps([span_to_dict(s) for s in spans]))


def throughput(spans: list[Span]) -> dict[str, float]:
    """ns per span for each contender (best of interleaved rounds)."""
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    n = len(spans)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    usage = dict(_USAGE)

    def sdk_path() -> None:
        # The SDK recording and exporting the same tree (same names, kinds,
        # attributes, links, explicit times): what a native OTel tracer pays.
        t = 1_700_000_000_000_000_000
        root = tracer.start_span("main", start_time=t)
        root_ctx = otel_trace.set_span_in_context(root)
        link = [otel_trace.Link(root.get_span_context(), {"relation": "spawned_from"})]
        for _ in range((n - 1) // 3):
            task = tracer.start_span("request", links=link, start_time=t)
            task_ctx = otel_trace.set_span_in_context(task)
            call = tracer.start_span("handle", context=task_ctx, start_time=t)
            call_ctx = otel_trace.set_span_in_context(call)
            llm = tracer.start_span(
                "chat", context=call_ctx, kind=otel_trace.SpanKind.CLIENT, attributes=usage,
                start_time=t,
            )
            llm.end(end_time=t + 1000)
            call.end(end_time=t + 1000)
            task.end(end_time=t + 1000)
        root.end(end_time=t + 1000)
        del root_ctx

    def bridge() -> None:
        export_to_otel(spans, exporter)

    contenders: dict[str, Callable[[], object]] = {
        "naive json.dumps(list)": lambda: naive_json(spans, io.StringIO()),
        "write_jsonl": lambda: write_jsonl(spans, io.StringIO()),
        "write_chrome_trace": lambda: write_chrome_trace(spans, io.StringIO()),
        "otel sdk native path": sdk_path,
        "otel bridge (ours)": bridge,
    }
    return best_ns(
        contenders, number=1, rounds=3 if quick() else 5, per_call=n, between=exporter.clear
    )


def peak_mib(func: Callable[[], object]) -> float:
    """Peak traced memory (MiB) while ``func`` runs; allocations before it are not counted."""
    gc.collect()
    tracemalloc.start()
    try:
        func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def memory_of_exports(requests: int, small_requests: int, tmp: str) -> dict[str, float]:
    """Peak MiB of each exporter over in-memory traces (dropped on return).

    JSONL is measured at full size. tracemalloc slows every allocation
    several-fold, so the naive baseline and Chrome are measured on a
    ``small_requests`` trace (their peaks grow linearly with the span count).
    """
    result = _memory_of_big_jsonl(requests, tmp)
    small = build_trace(small_requests)

    def naive() -> None:
        with open(os.devnull, "w", encoding="utf-8") as sink:
            naive_json(small, sink)

    return {
        **result,
        "small_n": len(small),
        "small_jsonl": peak_mib(lambda: write_jsonl(small, os.path.join(tmp, "s.jsonl"))),
        "chrome": peak_mib(lambda: write_chrome_trace(small, os.path.join(tmp, "c.json"))),
        "naive": peak_mib(naive),
    }


def _memory_of_big_jsonl(requests: int, tmp: str) -> dict[str, float]:
    big = build_trace(requests)
    n = len(big)
    target = os.path.join(tmp, "t.jsonl")
    t0 = time.perf_counter()
    mem_jsonl = peak_mib(lambda: write_jsonl(big, target))
    jsonl_s = time.perf_counter() - t0
    sample = big[: min(10_000, n)]
    per_span = sum(sys.getsizeof(s) + sys.getsizeof(s.metadata) for s in sample) / len(sample)
    return {
        "n": n,
        "jsonl": mem_jsonl,
        "jsonl_s": jsonl_s,
        "size": os.path.getsize(target) / 2**20,
        "spans_mib": per_span * n / 2**20,
    }


def live_stream(requests: int, path: str) -> None:
    """A program making ``requests`` requests while JsonlStreamWriter streams them.

    The program drains its collector every 7.5k spans (``take_spans``), so
    only the file keeps the trace.
    """
    clock = MockClock()
    with install_override(clock):
        c = SpanCollector()
        with JsonlStreamWriter(path, collector=c):
            root = c.start("pipeline", "main")
            done = 0
            while done < requests:
                step = min(2_500, requests - done)
                make_requests(c, clock, root, step)
                c.take_spans()
                done += step
            c.end(root)


def collect_then_dump(requests: int, path: str) -> None:
    """Baseline: keep every span in the collector, dump one JSON document at the end."""
    spans = build_trace(requests)
    with open(path, "w", encoding="utf-8") as out:
        naive_json(spans, out)


def _child_peak_rss(mode: str, requests: int, path: str) -> float:
    """Peak RSS (MiB) of a fresh interpreter running ``mode`` (``live``/``collect``)."""
    done = subprocess.run(
        [sys.executable, __file__, f"--{mode}", str(requests), path],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(done.stdout.strip())


def _child_main(mode: str, requests: int, path: str) -> None:
    (live_stream if mode == "--live" else collect_then_dump)(requests, path)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking
    # parent, which would report the benchmark's own memory.
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print(int(line.split()[1]) / 1024)  # kB
                return
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> list[str]:
    """Run and print the tables; returns the goal lines."""
    print("## Exporters (benchmarks/export.py)")
    print(machine_line())
    requests = 2_500 if quick() else 10_000  # 7.5k / 30k spans
    spans = build_trace(requests)
    n = len(spans)
    ns = throughput(spans)
    base = ns["naive json.dumps(list)"]
    rows = [
        Row(label, 1e9 / value, "spans/s", f"{value:,.0f} ns/span; {value / base:.2f}x naive")
        for label, value in ns.items()
        if not label.startswith("otel")
    ]
    sdk, ours = ns["otel sdk native path"], ns["otel bridge (ours)"]
    rows.append(Row("otel sdk native path", 1e9 / sdk, "spans/s", f"{sdk:,.0f} ns/span"))
    note = f"{ours:,.0f} ns/span; {ours / sdk:.2f}x SDK"
    rows.append(Row("otel bridge (ours)", 1e9 / ours, "spans/s", note))
    print_table(f"Throughput, {n:,} spans", rows)

    big_requests = 33_333 if quick() else 333_333  # 1 + 3 x requests spans: 100k / 1M
    small_requests = big_requests // 10
    with tempfile.TemporaryDirectory() as tmp:
        mem = memory_of_exports(big_requests, small_requests, tmp)
        live = os.path.join(tmp, "live.jsonl")
        t0 = time.perf_counter()
        rss_live = _child_peak_rss("live", big_requests, live)
        live_s = time.perf_counter() - t0
        with open(live, encoding="utf-8") as fh:
            live_lines = sum(1 for _ in fh)
        rss_collect = _child_peak_rss("collect", big_requests, os.path.join(tmp, "all.json"))
        rss_base = _child_peak_rss("live", 0, os.path.join(tmp, "empty.jsonl"))
    big_n, small_n = int(mem["n"]), int(mem["small_n"])
    mem_jsonl, mem_naive, mem_chrome = mem["jsonl"], mem["naive"], mem["chrome"]
    mem_rows = [
        Row(f"write_jsonl, {big_n:,} spans in memory", mem_jsonl, "MiB peak",
            f"file {mem['size']:,.0f} MiB in {mem['jsonl_s']:.0f}s under tracemalloc; "
            f"the spans themselves ~{mem['spans_mib']:,.0f} MiB"),
        Row(f"live JsonlStreamWriter, {live_lines:,} spans", rss_live, "MiB peak RSS",
            f"fresh process making and streaming them in {live_s:.0f}s; "
            f"{rss_live - rss_base:.1f} MiB above the bare interpreter ({rss_base:.0f} MiB)"),
        Row(f"keep all + naive dump, {live_lines:,} spans", rss_collect, "MiB peak RSS",
            f"{rss_collect / rss_live:.1f}x the live stream"),
        Row(f"write_jsonl, {small_n:,} spans", mem["small_jsonl"], "MiB peak", ""),
        Row(f"naive json.dumps(list), {small_n:,} spans", mem_naive, "MiB peak",
            f"{mem_naive / max(mem['small_jsonl'], 0.01):,.0f}x write_jsonl; "
            f"~{mem_naive * big_n / small_n:,.0f} MiB at {big_n:,}"),
        Row(f"write_chrome_trace, {small_n:,} spans", mem_chrome, "MiB peak",
            f"{mem_chrome * 2**20 / small_n:,.0f} B/span of lane arrays and lane names; "
            "no copy of the spans"),
    ]  # fmt: skip
    print_table("Peak memory (tracemalloc; RSS rows: fresh processes, VmHWM)", mem_rows)
    print()
    goals = [
        check("streaming JSONL no slower than the naive in-memory json.dumps",
              ns["write_jsonl"] <= base, f"{ns['write_jsonl'] / base:.2f}x"),
        check("OTel bridge no slower than the SDK's own path", ours <= sdk,
              f"{ours / sdk:.2f}x"),
        check("1M spans to JSONL: exporter peak < 1 MiB (no second copy)", mem_jsonl < 1,
              f"{mem_jsonl:.2f} MiB vs naive ~{mem_naive * big_n / small_n:,.0f} MiB"),
        check("live stream of 1M spans: peak RSS under 100 MiB", rss_live < 100,
              f"{rss_live:.0f} MiB, {live_lines:,} lines"),
    ]  # fmt: skip
    return goals


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in {"--live", "--collect"}:
        _child_main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    else:
        main()
