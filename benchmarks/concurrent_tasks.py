"""Concurrent tasks: 10k tasks x 10 nested spans with awaits (issue 9 (c)).

Run: ``.venv/bin/python benchmarks/concurrent_tasks.py`` (``make bench`` runs it too).

Each task opens 10 nested spans, awaiting ``asyncio.sleep(0)`` inside every
level, so all tasks interleave at every depth -- the case a thread-local
stack gets wrong and a per-task ContextVar chain gets right. Contenders, on
stock asyncio and on uvloop, in one process, interleaved round by round:

* ``bare``: the same coroutines with no tracing (the baseline);
* ``floor``: ContextVar set/reset + ``perf_counter_ns`` + a slotted record;
* ours via ``span_start``/``span_end`` and via ``async with span(...)``;
* the OpenTelemetry SDK (``start_as_current_span``, SimpleSpanProcessor +
  InMemorySpanExporter).

Times are CPU seconds of this process for one whole run (create the tasks,
gather them), best of the rounds; the cyclic GC stays on, as in real use.
Each traced run is checked: 100k spans, every inner span parented to the
span its own task opened just before.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from _harness import Row, machine_line, print_table, quick
from spans import _Record

import harn_async_trace as h

DEPTH = 10
_sleep = asyncio.sleep

# -- the coroutines ------------------------------------------------------------


async def bare(depth: int) -> None:
    """No tracing: the cost of the tasks and awaits themselves."""
    await _sleep(0)
    if depth > 1:
        await bare(depth - 1)


_floor_var: ContextVar[int | None] = ContextVar("floor", default=None)
_floor_out: list[Any] = []
_pc = time.perf_counter_ns


async def floor(depth: int) -> None:
    """ContextVar set/reset, two clock reads and one record per span."""
    parent = _floor_var.get()
    token = _floor_var.set(depth)
    began = _pc()
    try:
        await _sleep(0)
        if depth > 1:
            await floor(depth - 1)
    finally:
        _floor_out.append(_Record(depth, parent, "level", began, _pc() - began, {}))
        _floor_var.reset(token)


_ss, _se, _span = h.span_start, h.span_end, h.span
_FN_CALL = h.SpanKind.FN_CALL


async def api(depth: int) -> None:
    """span_start / span_end around each level."""
    span_id = _ss(_FN_CALL, "level")
    try:
        await _sleep(0)
        if depth > 1:
            await api(depth - 1)
    finally:
        _se(span_id)


async def scoped(depth: int) -> None:
    """``async with span(...)`` around each level."""
    async with _span(_FN_CALL, "level"):
        await _sleep(0)
        if depth > 1:
            await scoped(depth - 1)


def make_otel() -> tuple[Callable[[int], Awaitable[None]], Callable[[], int]]:
    """The OTel SDK version, plus a function that counts and drops its spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    async def otel(depth: int) -> None:
        with tracer.start_as_current_span("level"):
            await _sleep(0)
            if depth > 1:
                await otel(depth - 1)

    def drain() -> int:
        count = len(exporter.get_finished_spans())
        exporter.clear()
        return count

    return otel, drain


# -- running -------------------------------------------------------------------


def run_once(tasks: int, coro: Callable[[int], Awaitable[None]], use_uvloop: bool) -> float:
    """CPU seconds to run ``tasks`` concurrent tasks of ``coro(DEPTH)``."""

    async def main() -> None:
        await asyncio.gather(*(asyncio.create_task(coro(DEPTH)) for _ in range(tasks)))

    gc.collect()
    began = time.process_time()
    if use_uvloop:
        uvloop.run(main())
    else:
        asyncio.run(main())
    return time.process_time() - began


def check_spans(spans: list[h.Span], tasks: int) -> None:
    """Every task's chain is intact: DEPTH spans, each level parented to the one above."""
    assert len(spans) == tasks * DEPTH, (len(spans), tasks * DEPTH)
    by_id = {s.span_id: s for s in spans}
    roots = 0
    for s in spans:
        if s.parent_id is None:
            roots += 1
        else:
            parent = by_id[s.parent_id]
            # The parent started before and ended after its child.
            assert parent.start_ns <= s.start_ns
            assert parent.end_ns >= s.end_ns
    assert roots == tasks, roots


def print_loop_table(best: dict[str, float], tasks: int, rounds: int, loop: str) -> None:
    """One table: CPU ms per run and the extra ns per span over ``bare``."""
    spans = tasks * DEPTH
    extra = {label: (best[label] - best["bare"]) * 1e9 / spans for label in best}

    def vs_bare(label: str) -> str:
        return f"{best[label] / best['bare']:.2f}x bare, +{extra[label]:,.0f} ns per span"

    def vs_floor(label: str) -> str:
        return (
            f"{vs_bare(label)}; tracing cost {extra[label] / extra['floor']:.2f}x floor's; "
            f"OTel / this = {extra['otel'] / extra[label]:.1f}x"
        )

    print_table(
        f"(c) {tasks:,} tasks x {DEPTH} nested spans with awaits, {loop} "
        f"(CPU ms per run, best of {rounds})",
        [
            Row("bare (no tracing)", best["bare"] * 1e3, "ms", "1.00x"),
            Row("floor: ContextVar set/reset + perf_counter_ns + record",
                best["floor"] * 1e3, "ms", vs_bare("floor")),
            Row("ours: span_start / span_end", best["api"] * 1e3, "ms", vs_floor("api")),
            Row("ours: async with span(...)", best["scoped"] * 1e3, "ms", vs_floor("scoped")),
            Row("OTel SDK, SimpleSpanProcessor + InMemory", best["otel"] * 1e3, "ms",
                vs_bare("otel")),
        ],
    )


def main() -> None:
    """Run every contender on both loops and print one table per loop."""
    print("## Concurrent tasks (benchmarks/concurrent_tasks.py)")
    print(machine_line())
    tasks = 1_000 if quick() else 10_000
    rounds = 2
    h.set_tracing_enabled(True)
    collector = h.current_collector()
    otel, otel_drain = make_otel()
    contenders: dict[str, Callable[[int], Awaitable[None]]] = {
        "bare": bare, "floor": floor, "api": api, "scoped": scoped, "otel": otel,
    }
    for use_uvloop in (False, True):
        best = dict.fromkeys(contenders, float("inf"))
        for round_no in range(rounds):
            for label, coro in contenders.items():
                if label == "otel" and round_no > 0 and not quick():
                    continue  # ~20x slower; one round is plenty for the ratio
                best[label] = min(best[label], run_once(tasks, coro, use_uvloop))
                if label in ("api", "scoped"):
                    check_spans(collector.take_spans(), tasks)
                elif label == "otel":
                    assert otel_drain() == tasks * DEPTH
                _floor_out.clear()
        print_loop_table(best, tasks, rounds, "uvloop" if use_uvloop else "asyncio")
    print()


if __name__ == "__main__":
    main()
