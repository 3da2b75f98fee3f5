"""Hot path: ns per span, enabled and disabled, against OpenTelemetry and a bare floor.

Run: ``.venv/bin/python benchmarks/spans.py`` (``make bench`` runs it too;
``make bench-peers`` runs it in its own venv with Logfire and ddtrace).
It measures the core this process uses, then runs itself again with
``HARN_TRACE_PURE=1`` for the pure-Python core: every ratio is taken against
a floor measured in the same process, interleaved round by round.

Workload (issue 9 (a)): a nested pair -- an outer span and an inner span
with one metadata key -- timed per span. Contenders:

* ``floor``: what any task-local tracer must do at the very least: a
  ``ContextVar`` set/reset, two ``perf_counter_ns`` reads and one slotted
  record (with a metadata dict) appended to a list; ``async floor`` is the
  same inside a coroutine driven like the ``async with`` contender.
* ours via ``span_start``/``span_set_metadata``/``span_close`` (the cheap
  end) and ``span_end`` (which builds the record), via ``with span(...)``
  (+ ``handle.set_metadata``), ``async with span(...)``, and the collector
  methods directly.
* the OpenTelemetry SDK: ``start_as_current_span`` + ``set_attribute`` with a
  ``SimpleSpanProcessor`` + ``InMemorySpanExporter``, and with no processor;
  Logfire and ddtrace when installed, configured to send nothing.

(b) the disabled path: tracing off, per span, next to an empty Python call
pair and OpenTelemetry's no-op tracer.
"""

from __future__ import annotations

import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, best_ns, check, machine_line, print_table, pure_core_run, quick

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

_ss, _se, _sc, _sm = h.span_start, h.span_end, h.span_close, h.span_set_metadata
_span = h.span


def close_pair() -> None:
    """span_start/span_set_metadata/span_close (the cheap end), one key on the inner span."""
    outer = _ss("step", "outer")
    inner = _ss("fn_call", "inner")
    _sm(inner, "k", 1)
    _sc(inner)
    _sc(outer)


def api_pair() -> None:
    """span_start/span_end (each end builds and returns the Span record)."""
    outer = _ss("step", "outer")
    inner = _ss("fn_call", "inner")
    _sm(inner, "k", 1)
    _se(inner)
    _se(outer)


def _drive(coro: Any) -> None:
    """Run a coroutine that never suspends to its end (what a loop step does)."""
    try:
        coro.send(None)
    except StopIteration:
        pass


async def _async_floor() -> None:
    floor_pair()


def async_floor_pair() -> None:
    """The floor pair inside a coroutine, driven like the ``async with`` contender."""
    _drive(_async_floor())


async def _async_with() -> None:
    async with _span("step", "outer"):
        async with _span("fn_call", "inner") as handle:
            handle.set_metadata("k", 1)


def async_with_pair() -> None:
    """``async with span(...)``, metadata through the handle, in a coroutine."""
    _drive(_async_with())


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
    start, close, set_metadata = c.start, c.close, c.set_metadata
    step, fn_call = h.SpanKind.STEP, h.SpanKind.FN_CALL

    def collector_pair() -> None:
        outer = start(step, "outer")
        inner = start(fn_call, "inner")
        set_metadata(inner, "k", 1)
        close(inner)
        close(outer)

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


def make_peer_pairs() -> dict[str, Any]:
    """Logfire's and ddtrace's nested pairs when installed (``make bench-peers``); send nothing."""
    pairs: dict[str, Any] = {}
    try:
        import logfire
    except ImportError:
        pass
    else:
        logfire.configure(send_to_logfire=False, console=False, inspect_arguments=False)

        def logfire_pair() -> None:
            with logfire.span("outer"), logfire.span("inner") as inner:
                inner.set_attribute("k", 1)

        pairs["logfire"] = logfire_pair
    try:
        from ddtrace.trace import tracer
    except ImportError:
        pass
    else:
        # No agent runs here: the writer's flushes fail quietly off the hot path.
        def ddtrace_pair() -> None:
            with tracer.trace("outer"), tracer.trace("inner") as inner:
                inner.set_tag("k", 1)

        pairs["ddtrace"] = ddtrace_pair
    return pairs


# -- disabled ----------------------------------------------------------------


def disabled_api_span() -> None:
    """One span, start + close, tracing off."""
    _sc(_ss("step", "outer"))


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


# -- main --------------------------------------------------------------------


# Goals of issue 19, per core: (floor ratios) and the OTel ratio.
GOALS: dict[str, dict[str, float]] = {
    "compiled": {"close": 1.0, "with": 1.2, "async_with": 1.4, "otel": 40, "disabled": 0.8},
    "pure": {"close": 1.8, "with": 2.5, "async_with": 3.0, "otel": 20, "disabled": 1.5},
}


def main() -> list[str]:
    """Measure this process's core, print the tables and goal lines; then the pure core's."""
    core = "compiled" if h.accelerated else "pure"
    print(f"## Hot path (benchmarks/spans.py), {core} core")
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
    peers = make_peer_pairs()

    def drop_spans() -> None:
        default.take_spans()
        collector.take_spans()
        _floor_out.clear()
        otel_simple_clear()

    ours = best_ns(
        {
            "floor": floor_pair,
            "async_floor": async_floor_pair,
            "close": close_pair,
            "api": api_pair,
            "with": with_pair,
            "with_kw": with_kw_pair,
            "async_with": async_with_pair,
            "collector": make_collector_pair(collector),
        },
        number=number, rounds=rounds, per_call=2, between=drop_spans,
    )
    others = best_ns(
        {"floor": floor_pair, "otel_simple": otel_simple, "otel_bare": otel_bare, **peers},
        number=otel_number, rounds=max(2, rounds // 2), per_call=2, between=drop_spans,
    )
    # The others run fewer iterations; scale them by their own floor reading so
    # the cross-table ratios use one floor measurement.
    scale = ours["floor"] / others["floor"]
    other_ns = {k: v * scale for k, v in others.items()}
    floor_ns = ours["floor"]
    otel_ns = other_ns["otel_simple"]

    def vs(label: str, floor: str = "floor") -> str:
        return (
            f"{ours[label] / ours[floor]:.2f}x {floor.replace('_', ' ')}; "
            f"OTel Simple+InMemory / this = {otel_ns / ours[label]:.1f}x"
        )

    rows = [
        Row("floor: ContextVar set/reset + perf_counter_ns + slotted record", floor_ns,
            "ns", "1.00x floor"),
        Row("async floor: the same inside a coroutine", ours["async_floor"], "ns",
            f"{ours['async_floor'] / floor_ns:.2f}x floor"),
        Row("ours: span_start / span_set_metadata / span_close", ours["close"], "ns",
            vs("close")),
        Row("ours: span_start / span_set_metadata / span_end", ours["api"], "ns", vs("api")),
        Row("ours: with span(...) + handle.set_metadata", ours["with"], "ns", vs("with")),
        Row("ours: with span(..., k=1)", ours["with_kw"], "ns", vs("with_kw")),
        Row("ours: async with span(...) + handle.set_metadata", ours["async_with"], "ns",
            vs("async_with", "async_floor")),
        Row("ours: SpanCollector.start / set_metadata / close", ours["collector"], "ns",
            vs("collector")),
        Row("OTel SDK start_as_current_span, SimpleSpanProcessor + InMemory", otel_ns, "ns",
            f"{otel_ns / floor_ns:.1f}x floor"),
        Row("OTel SDK start_as_current_span, no processor", other_ns["otel_bare"], "ns",
            f"{other_ns['otel_bare'] / floor_ns:.1f}x floor"),
    ]
    for peer in ("logfire", "ddtrace"):
        if peer in other_ns:
            rows.append(Row(f"{peer}, nested pair (sends nothing)", other_ns[peer], "ns",
                            f"{other_ns[peer] / floor_ns:.1f}x floor; "
                            f"/ ours (span_close) = {other_ns[peer] / ours['close']:.1f}x"))
        else:
            rows.append(Row(f"{peer}: not installed here (make bench-peers)", 0, "ns", ""))
    print_table("(a) enabled, ns per span (nested pair, one metadata key; min of rounds)", rows)
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
            Row("ours: span_start + span_close, tracing off", off["api"], "ns",
                f"{off['api'] / off['empty']:.2f}x empty call pair"),
            Row("ours: with span(...), tracing off", off["with"], "ns",
                f"{off['with'] / off['empty']:.2f}x empty call pair"),
            Row("OTel NoOpTracer, nested pair (per span)", off["otel_noop"] / 2, "ns",
                f"{off['otel_noop'] / 2 / off['empty']:.2f}x empty call pair"),
        ],
    )
    print()
    goal = GOALS[core]
    close_r, with_r = ours["close"] / floor_ns, ours["with"] / floor_ns
    async_r = ours["async_with"] / ours["async_floor"]
    otel_r, off_r = otel_ns / ours["close"], off["api"] / off["empty"]
    lines = [
        check(f"{core}: start+set_metadata+close <= {goal['close']}x floor",
              close_r <= goal["close"], f"{close_r:.2f}x"),
        check(f"{core}: with span() <= {goal['with']}x floor", with_r <= goal["with"],
              f"{with_r:.2f}x"),
        check(f"{core}: async with span() <= {goal['async_with']}x async floor",
              async_r <= goal["async_with"], f"{async_r:.2f}x"),
        check(f"{core}: OTel Simple+InMemory / ours >= {goal['otel']:.0f}x",
              otel_r >= goal["otel"], f"{otel_r:.1f}x (span_close pair)"),
        check(f"{core}: disabled start+close <= {goal['disabled']}x two empty calls",
              off_r <= goal["disabled"], f"{off_r:.2f}x"),
    ]
    if h.accelerated and "--child" not in sys.argv:
        lines += pure_core_run(__file__)
    return lines


if __name__ == "__main__":
    main()
