"""VM tracing overhead: call-heavy Harn programs with every fn_call traced vs tracing off.

    .venv/bin/python benchmarks/vm_tracing.py        # BENCH_QUICK=1 for a smoke run

Programs: recursive `fib(25)` (242,785 calls) and a loop making 100,000
calls. Each runs on the VM with tracing off and with tracing on (a fresh
`SpanCollector` per run, so every call opens and ends an `fn_call` span);
the contenders are interleaved round by round and the best round counts.
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

from harn_async_trace import SpanCollector, use_collector
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
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for label, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            best[label] = min(best[label], time.perf_counter() - t0)
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
        "cpython fib": run_py_fib,
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
    print_table(title, rows)
    print()
    for prog in ("fib", "loop"):
        ratio = best[f"{prog} on"] / best[f"{prog} off"]
        check(f"{prog}: tracing-on <= 1.10x tracing-off", ratio <= 1.10, f"{ratio:.2f}x")


if __name__ == "__main__":
    main()
