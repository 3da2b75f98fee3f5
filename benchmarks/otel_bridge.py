"""use_otel(): what the harn hot path pays with the OpenTelemetry bridge off, on, and closed.

Run: ``.venv/bin/python benchmarks/otel_bridge.py`` (``make bench`` runs it too).

Workload: the nested pair of ``benchmarks/spans.py`` (an outer and an inner
``span_start``/``span_end`` with one metadata key), timed per span, in one
process, the states interleaved round by round (CPU time, min of rounds):

* ``off``: no ``use_otel`` ever active in this round;
* ``on``: ``use_otel(provider)`` with a ``SimpleSpanProcessor`` and an
  ``InMemorySpanExporter``: every harn span becomes a live SDK span;
* ``closed``: after a ``use_otel`` handle was opened and closed;
* ``otel``: the same two spans made by hand with the OTel SDK
  (``start_as_current_span`` with the attributes the bridge gives them, and
  ``set_attribute``) on the same provider setup: the cost of the span itself,
  which the bridge is measured against.

Plus ``get_current_span()`` inside an open harn span (answered by the
overlay from the harn chain) against OTel's own, inside an OTel span.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, check, machine_line, print_table, quick
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import harn_async_trace as h
from harn_async_trace.export import use_otel


def harn_pair() -> None:
    """The nested pair through the module API."""
    outer = h.span_start("step", "outer")
    inner = h.span_start("fn_call", "inner")
    h.span_set_metadata(inner, "k", 1)
    h.span_end(inner)
    h.span_end(outer)


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _timed(func: Callable[[], object], number: int) -> float:
    return timeit.Timer(func, timer=time.process_time).timeit(number) * 1e9 / number


def main() -> list[str]:
    """Interleave the states, print the table and the goal lines."""
    print("## use_otel bridge (benchmarks/otel_bridge.py)")
    print(machine_line())
    number, rounds = (200, 3) if quick() else (2_000, 15)
    provider, exporter = _provider()
    native_provider, native_exporter = _provider()
    tracer = native_provider.get_tracer("bench")

    # The same spans made by hand with OTel: the attributes the bridge gives them.
    outer_attrs = {"harn.span.kind": "step", "harn.span.id": 1}
    inner_attrs = {"harn.span.kind": "fn_call", "harn.span.id": 2}

    def otel_pair() -> None:
        with tracer.start_as_current_span("outer", attributes=outer_attrs), \
                tracer.start_as_current_span("inner", attributes=inner_attrs) as inner:
            inner.set_attribute("harn.k", 1)

    h.set_tracing_enabled(True)
    collector = h.current_collector()
    collector.max_spans = 10**9
    best = dict.fromkeys(("off", "on", "closed", "otel", "current_on", "current_otel"),
                         float("inf"))

    def keep(label: str, ns: float) -> None:
        best[label] = min(best[label], ns)

    for _ in range(rounds):
        keep("off", _timed(harn_pair, number) / 2)
        collector.take_spans()
        with use_otel(provider):
            keep("on", _timed(harn_pair, number) / 2)
            with h.span("step", "here"):
                keep("current_on", _timed(trace.get_current_span, number * 10))
        collector.take_spans()
        exporter.clear()
        keep("closed", _timed(harn_pair, number) / 2)
        collector.take_spans()
        keep("otel", _timed(otel_pair, number) / 2)
        with tracer.start_as_current_span("here"):
            keep("current_otel", _timed(trace.get_current_span, number * 10))
        native_exporter.clear()
    h.set_tracing_enabled(False)

    off = best["off"]
    print_table(
        "ns per harn span (nested pair, one metadata key; min of rounds)",
        [
            Row("off: no use_otel", off, "ns", "1.00x"),
            Row("on: use_otel(provider), SimpleSpanProcessor + InMemory", best["on"], "ns",
                f"{best['on'] / off:.1f}x off; {best['on'] / best['otel']:.2f}x OTel's own span"),
            Row("closed: after use_otel(...).close()", best["closed"], "ns",
                f"{best['closed'] / off:.2f}x off"),
            Row("the same spans by hand: OTel start_as_current_span, same processor",
                best["otel"], "ns",
                f"{best['otel'] / off:.1f}x off"),
            Row("get_current_span() inside a harn span, use_otel on", best["current_on"], "ns",
                f"{best['current_on'] / best['current_otel']:.2f}x OTel's own"),
            Row("get_current_span() inside an OTel span (OTel alone)", best["current_otel"],
                "ns", "1.00x"),
        ],
    )
    print()
    return [
        check("use_otel off or closed costs the hot path nothing (<= 1.10x off)",
              best["closed"] / off <= 1.10, f"closed {best['closed'] / off:.2f}x off"),
        check("use_otel on costs little next to the same span made with OTel (<= 2x)",
              best["on"] / best["otel"] <= 2.0,
              f"on {best['on']:.0f} ns vs OTel {best['otel']:.0f} ns per span"),
    ]


if __name__ == "__main__":
    main()
