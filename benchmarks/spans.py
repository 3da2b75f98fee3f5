"""Hot path: ns per span, enabled and disabled, against OpenTelemetry and a bare floor.

Run: ``.venv/bin/python benchmarks/spans.py`` (``make bench`` runs it too).

Workload (issue 9 (a)): a nested pair -- an outer span and an inner span
with one metadata key -- timed per span. Contenders, all in this process and
interleaved round by round:

* ``floor``: what any task-local tracer must do at the very least: a
  ``ContextVar`` set/reset, two ``perf_counter_ns`` reads and one slotted
  record (with a metadata dict) appended to a list.
* ours via ``span_start``/``span_end``/``span_set_metadata``, via
  ``with span(...)`` (+ ``handle.set_metadata``), and via the collector
  methods directly.
* the OpenTelemetry SDK: ``start_as_current_span`` + ``set_attribute`` with a
  ``SimpleSpanProcessor`` + ``InMemorySpanExporter``, and with no processor.

(b) the disabled path: tracing off, per span, next to an empty Python call
pair and OpenTelemetry's no-op tracer.

(c) the per-thread clock read (issue 14): the collector pair again, with the
span clock read as ``clock.current_clock()`` (now) and as the inline
``_ACTIVE[-1]`` it replaced (the collector's span-opening method recompiled
with that one line swapped back), with no virtual loop running and with one
running in another thread (which makes every thread do the lookup).
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, best_ns, check, machine_line, print_table, quick

import harn_async_trace as h

# -- the floor ---------------------------------------------------------------

_floor_var: ContextVar[int | None] = ContextVar("floor", default=None)
_floor_out: list[Any] = []
_pc = time.perf_counter_ns


class _Record:
    __slots__ = ("duration", "metadata", "name", "parent", "span_id", "start")

    def __init__(
        self, span_id: int, parent: int | None, name: str, start: int, duration: int,
        metadata: dict[str, Any],
    ) -> None:
        self.span_id = span_id
        self.parent = parent
        self.name = name
        self.start = start
        self.duration = duration
        self.metadata = metadata


def floor_pair() -> None:
    """The nested pair at the floor: set/reset, two clock reads, one record each."""
    t1 = _floor_var.set(1)
    s1 = _pc()
    t2 = _floor_var.set(2)
    s2 = _pc()
    meta = {"k": 1}
    _floor_out.append(_Record(2, 1, "inner", s2, _pc() - s2, meta))
    _floor_var.reset(t2)
    _floor_out.append(_Record(1, None, "outer", s1, _pc() - s1, {}))
    _floor_var.reset(t1)


# -- ours --------------------------------------------------------------------

_ss, _se, _sm = h.span_start, h.span_end, h.span_set_metadata
_span = h.span


def api_pair() -> None:
    """span_start/span_end with one metadata key on the inner span."""
    outer = _ss("step", "outer")
    inner = _ss("fn_call", "inner")
    _sm(inner, "k", 1)
    _se(inner)
    _se(outer)


def with_pair() -> None:
    """``with span(...)``, metadata through the handle."""
    with _span("step", "outer"), _span("fn_call", "inner") as handle:
        handle.set_metadata("k", 1)


def with_kw_pair() -> None:
    """``with span(...)``, metadata as a keyword argument."""
    with _span("step", "outer"), _span("fn_call", "inner", k=1):
        pass


def make_collector_pair(c: h.SpanCollector) -> Any:
    """The collector methods directly (no current-collector lookup)."""
    start, end, set_metadata = c.start, c.end, c.set_metadata
    step, fn_call = h.SpanKind.STEP, h.SpanKind.FN_CALL

    def collector_pair() -> None:
        outer = start(step, "outer")
        inner = start(fn_call, "inner")
        set_metadata(inner, "k", 1)
        end(inner)
        end(outer)

    return collector_pair


# -- OpenTelemetry -----------------------------------------------------------


def make_otel_pair(processor: bool) -> tuple[Any, Any]:
    """A nested pair on a fresh SDK tracer provider, plus a reset function."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    if processor:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def otel_pair() -> None:
        with tracer.start_as_current_span("outer"):
            with tracer.start_as_current_span("inner") as inner:
                inner.set_attribute("k", 1)

    return otel_pair, exporter.clear


def make_otel_noop_pair() -> Any:
    """OpenTelemetry's API no-op tracer: its 'disabled' path."""
    from opentelemetry.trace import NoOpTracer

    tracer = NoOpTracer()

    def otel_noop_pair() -> None:
        with tracer.start_as_current_span("outer"):
            with tracer.start_as_current_span("inner") as inner:
                inner.set_attribute("k", 1)

    return otel_noop_pair


# -- disabled ----------------------------------------------------------------


def disabled_api_span() -> None:
    """One span, start + end, tracing off."""
    _se(_ss("step", "outer"))


def disabled_with_span() -> None:
    """One ``with span(...)`` block, tracing off."""
    with _span("step", "outer"):
        pass


def _noop_start(kind: object, name: object) -> int:
    return 0


def _noop_end(span_id: int) -> None:
    return None


def empty_call_pair() -> None:
    """Two empty Python functions shaped like span_start/span_end: any function API's floor."""
    _noop_end(_noop_start("step", "outer"))


# -- (c) the clock read, before and after ------------------------------------


def make_inline_clock_collector() -> type[h.SpanCollector] | None:
    """SpanCollector whose span-opening method reads the clock as the old inline ``_ACTIVE[-1]``.

    The method is whichever collector method makes the one ``current_clock()``
    read per span start (``open`` today); None if there is no such single read.
    """
    import inspect
    import textwrap

    from harn_async_trace import clock as clock_module
    from harn_async_trace import collector as collector_module

    now, before = "clock = current_clock()", "clock = _ACTIVE[-1]"
    for name in ("open", "_open_span"):
        method = getattr(h.SpanCollector, name, None)
        if method is None:
            continue
        source = textwrap.dedent(inspect.getsource(method))
        if source.count(now) != 1:
            continue
        namespace = dict(vars(collector_module), _ACTIVE=clock_module._ACTIVE)
        exec(compile(source.replace(now, before), collector_module.__file__, "exec"), namespace)
        return type("InlineClockCollector", (h.SpanCollector,), {name: namespace[name]})
    return None


def clock_read_rows(number: int, rounds: int) -> list[Row]:
    """(c): the collector pair, current_clock() vs inline _ACTIVE[-1], without/with a loop."""
    import threading

    from harn_async_trace.loop import run

    inline_cls = make_inline_clock_collector()
    if inline_cls is None:
        return []
    now_c, before_c = h.SpanCollector(max_spans=10**9), inline_cls(max_spans=10**9)

    def drop() -> None:
        now_c.take_spans()
        before_c.take_spans()

    def measure() -> dict[str, float]:
        return best_ns(
            {"before": make_collector_pair(before_c), "now": make_collector_pair(now_c)},
            number=number, rounds=rounds, per_call=2, between=drop,
        )

    idle = measure()
    release = threading.Event()
    started = threading.Event()

    async def hold() -> None:
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)

    other = threading.Thread(target=run, args=(hold(),), kwargs={"clock": h.MockClock()})
    other.start()
    started.wait(10)
    try:
        busy = measure()
    finally:
        release.set()
        other.join(10)
    return [
        Row("no virtual loop: inline _ACTIVE[-1] (before)", idle["before"], "ns", "1.00x"),
        Row("no virtual loop: current_clock() (now)", idle["now"], "ns",
            f"{idle['now'] / idle['before']:.3f}x before"),
        Row("virtual loop in another thread: inline _ACTIVE[-1]", busy["before"], "ns",
            "1.00x"),
        Row("virtual loop in another thread: current_clock()", busy["now"], "ns",
            f"{busy['now'] / busy['before']:.3f}x before"),
    ]


# -- main --------------------------------------------------------------------


def main() -> list[str]:
    """Run (a) and (b), print both tables and the goal lines."""
    print("## Hot path (benchmarks/spans.py)")
    print(machine_line())
    small = quick()
    number, rounds = (500, 3) if small else (2_000, 30)
    otel_number = max(50, number // 20)

    collector = h.SpanCollector(max_spans=10**9)
    h.set_tracing_enabled(True)
    default = h.current_collector()
    default.max_spans = 10**9
    otel_simple, otel_simple_clear = make_otel_pair(processor=True)
    otel_bare, _ = make_otel_pair(processor=False)

    def drop_spans() -> None:
        default.take_spans()
        collector.take_spans()
        _floor_out.clear()
        otel_simple_clear()

    ours = best_ns(
        {
            "floor": floor_pair,
            "api": api_pair,
            "with": with_pair,
            "with_kw": with_kw_pair,
            "collector": make_collector_pair(collector),
        },
        number=number, rounds=rounds, per_call=2, between=drop_spans,
    )
    otel = best_ns(
        {"floor": floor_pair, "otel_simple": otel_simple, "otel_bare": otel_bare},
        number=otel_number, rounds=max(2, rounds // 2), per_call=2, between=drop_spans,
    )
    # OTel runs fewer iterations; scale it by its own floor reading so the
    # cross-table ratio uses one floor measurement.
    scale = ours["floor"] / otel["floor"]
    otel_simple_ns = otel["otel_simple"] * scale
    otel_bare_ns = otel["otel_bare"] * scale
    floor_ns = ours["floor"]

    def vs(label: str) -> str:
        return (
            f"{ours[label] / floor_ns:.2f}x floor; "
            f"OTel Simple+InMemory / this = {otel_simple_ns / ours[label]:.1f}x"
        )

    print_table(
        "(a) enabled, ns per span (nested pair, one metadata key; min of rounds)",
        [
            Row("floor: ContextVar set/reset + perf_counter_ns + slotted record", floor_ns,
                "ns", "1.00x floor"),
            Row("ours: span_start / span_set_metadata / span_end", ours["api"], "ns", vs("api")),
            Row("ours: with span(...) + handle.set_metadata", ours["with"], "ns", vs("with")),
            Row("ours: with span(..., k=1)", ours["with_kw"], "ns", vs("with_kw")),
            Row("ours: SpanCollector.start / set_metadata / end", ours["collector"], "ns",
                vs("collector")),
            Row("OTel SDK start_as_current_span, SimpleSpanProcessor + InMemory",
                otel_simple_ns, "ns", f"{otel_simple_ns / floor_ns:.1f}x floor"),
            Row("OTel SDK start_as_current_span, no processor", otel_bare_ns, "ns",
                f"{otel_bare_ns / floor_ns:.1f}x floor"),
        ],
    )
    h.set_tracing_enabled(False)
    off = best_ns(
        {
            "empty": empty_call_pair,
            "api": disabled_api_span,
            "with": disabled_with_span,
            "otel_noop": make_otel_noop_pair(),
        },
        number=number * 10, rounds=rounds, per_call=1,
    )
    print_table(
        "(b) disabled, ns per span (start + end; min of rounds)",
        [
            Row("empty Python functions: end(start(kind, name))", off["empty"], "ns", "1.00x"),
            Row("ours: span_start + span_end, tracing off", off["api"], "ns",
                f"{off['api'] / off['empty']:.2f}x empty call pair"),
            Row("ours: with span(...), tracing off", off["with"], "ns",
                f"{off['with'] / off['empty']:.2f}x empty call pair"),
            Row("OTel NoOpTracer, nested pair (per span)", off["otel_noop"] / 2, "ns",
                f"{off['otel_noop'] / 2 / off['empty']:.2f}x empty call pair"),
        ],
    )
    clock_rows = clock_read_rows(number, rounds)
    if clock_rows:
        print_table(
            "(c) span clock read, SpanCollector.start/set_metadata/end (ns per span)",
            clock_rows,
        )
    print()
    return [
        check("enabled span >= 40x cheaper than OTel Simple+InMemory",
              otel_simple_ns / ours["api"] >= 40,
              f"span_start/end {otel_simple_ns / ours['api']:.1f}x, "
              f"with span {otel_simple_ns / ours['with']:.1f}x"),
        check("enabled span <= 1.5x floor", ours["api"] / floor_ns <= 1.5,
              f"span_start/end {ours['api'] / floor_ns:.2f}x, "
              f"with span {ours['with'] / floor_ns:.2f}x"),
        check("disabled <= 100 ns/span", off["api"] <= 100,
              f"span_start+span_end {off['api']:.0f} ns, with span {off['with']:.0f} ns"),
    ]


if __name__ == "__main__":
    main()
