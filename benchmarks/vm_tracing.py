"""VM tracing overhead: call-heavy Harn programs with every fn_call traced vs tracing off.

    .venv/bin/python benchmarks/vm_tracing.py        # BENCH_QUICK=1 for a smoke run

Programs: recursive `fib(25)` (242,785 calls) and a loop making 100,000
calls. Each runs on the VM with tracing off and with tracing on (a fresh
`SpanCollector` per run, so every call opens and ends an `fn_call` span);
the contenders are interleaved round by round and the best round (CPU
time) counts.
The same fib runs on CPython for scale. Goal: tracing-on <= 1.10x off.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import Row, check, machine_line, print_table, quick

import vm_demo.handlers as vm_handlers
import vm_demo.vm as vm_loop
from harn_async_trace import SpanCollector, SpanKind, span_end, span_start, use_collector
from vm_demo.compiler import ModuleCode, compile_source
from vm_demo.runtime import VM

FIB_N = 20 if quick() else 25
LOOP_N = 10_000 if quick() else 100_000
ROUNDS = 2 if quick() else 5

FIB_SRC = f"""
fn fib(n) {{
  if n < 2 {{ return n }}
  return fib(n - 1) + fib(n - 2)
}}
fib({FIB_N})
"""
LOOP_SRC = f"""
fn step(x) {{ return x + 1 }}
var i = 0
var acc = 0
while i < {LOOP_N} {{
  acc = step(acc)
  i += 1
}}
"""


def fib_calls(n: int) -> int:
    """Number of calls recursive fib(n) makes."""
    a, b = 1, 1  # calls(0), calls(1)
    for _ in range(n - 1):
        a, b = b, a + b + 1
    return b if n >= 1 else a


def py_fib(n: int) -> int:
    if n < 2:
        return n
    return py_fib(n - 1) + py_fib(n - 2)


def run_py_fib() -> None:
    assert py_fib(FIB_N) >= 0


def py_fib_spans(n: int) -> int:
    """CPython fib opening one fn_call span per call: the library's cost alone."""
    sid = span_start(SpanKind.FN_CALL, "fib")
    r = n if n < 2 else py_fib_spans(n - 1) + py_fib_spans(n - 2)
    span_end(sid)
    return r


def run_py_fib_spans() -> None:
    collector = SpanCollector(max_spans=2_000_000)
    with use_collector(collector):
        py_fib_spans(FIB_N)
    assert len(collector.spans()) == fib_calls(FIB_N)


def vm_stubbed(code: ModuleCode) -> Callable[[], None]:
    """The VM with tracing on but span start/end stubbed: the VM's own bookkeeping."""
    inner = vm_runner(code, True, 1)  # only the pipeline span is real

    def run() -> None:
        saved = vm_loop.span_start, vm_handlers.span_end
        vm_loop.span_start = lambda kind, name: -1  # type: ignore[assignment]  # a fake id
        vm_handlers.span_end = lambda span_id: None  # type: ignore[assignment]
        try:
            inner()
        finally:
            vm_loop.span_start, vm_handlers.span_end = saved

    return run


def vm_runner(code: ModuleCode, tracing: bool, expect_spans: int) -> Callable[[], None]:
    def run() -> None:
        collector = SpanCollector(enabled=tracing, max_spans=2_000_000)

        async def main() -> None:
            with use_collector(collector):
                await VM().run_code(code)

        asyncio.run(main())
        got = len(collector.spans())
        assert got == expect_spans, f"expected {expect_spans} spans, got {got}"

    return run


def best_seconds(contenders: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Best CPU time per contender over interleaved rounds.

    CPU time (not wall time) because the box is shared: other processes
    stretch wall time but barely this process's CPU time. The GC stays on,
    as in a real run, so retained spans cost what they cost.
    """
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for label, fn in contenders.items():
            t0 = time.process_time()
            fn()
            best[label] = min(best[label], time.process_time() - t0)
    return best


def main() -> None:
    print(machine_line())
    fib_code = compile_source(FIB_SRC, "fib.harn")
    loop_code = compile_source(LOOP_SRC, "loop.harn")
    n_fib = fib_calls(FIB_N)
    # +1 for the implicit `pipeline` span of each traced run.
    contenders = {
        "fib off": vm_runner(fib_code, False, 0),
        "fib on": vm_runner(fib_code, True, n_fib + 1),
        "loop off": vm_runner(loop_code, False, 0),
        "loop on": vm_runner(loop_code, True, LOOP_N + 1),
        "fib stub": vm_stubbed(fib_code),
        "cpython fib": run_py_fib,
        "cpython fib spans": run_py_fib_spans,
    }
    best = best_seconds(contenders, ROUNDS)
    rows: list[Row] = []
    for prog, calls in (("fib", n_fib), ("loop", LOOP_N)):
        off, on = best[f"{prog} off"], best[f"{prog} on"]
        rows.append(Row(f"VM {prog} tracing off", calls / off, "calls/s", f"{off * 1000:.0f} ms"))
        rows.append(
            Row(
                f"VM {prog} tracing on",
                calls / on,
                "calls/s",
                f"{on * 1000:.0f} ms, {on / off:.2f}x off, "
                f"+{(on - off) / calls * 1e9:,.0f} ns per traced call",
            )
        )
    py = best["cpython fib"]
    rows.append(
        Row(
            f"CPython fib({FIB_N})",
            n_fib / py,
            "calls/s",
            f"{py * 1000:.0f} ms; VM (tracing off) is {best['fib off'] / py:.0f}x slower",
        )
    )
    title = f"VM tracing overhead (fib({FIB_N}) = {n_fib:,} calls, loop = {LOOP_N:,} calls)"
    stub, py_spans = best["fib stub"], best["cpython fib spans"]
    bookkeeping = (stub - best["fib off"]) / n_fib * 1e9
    library = (py_spans - py) / n_fib * 1e9
    rows.append(
        Row(
            "where the traced-call cost goes (fib)",
            (best["fib on"] - best["fib off"]) / n_fib * 1e9,
            "ns/call",
            f"VM bookkeeping (span fns stubbed): {bookkeeping:,.0f} ns; library "
            f"span_start+span_end in plain CPython fib: {library:,.0f} ns",
        )
    )
    print_table(title, rows)
    print()
    for prog in ("fib", "loop"):
        ratio = best[f"{prog} on"] / best[f"{prog} off"]
        check(f"{prog}: tracing-on <= 1.10x tracing-off", ratio <= 1.10, f"{ratio:.2f}x")


if __name__ == "__main__":
    main()
