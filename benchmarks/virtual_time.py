"""Virtual time: our loop (asyncio, uvloop) vs looptime and trio's MockClock, same run.

Workload (the issue's): 10k tasks; each sleeps 3600 + (i % 100) s, then puts a
5 s timeout around a 10 s sleep. Every contender must finish at virtual time
3704 s with 10k timeouts. Wall time and CPU time (this process) of a whole
run are reported, best and median of interleaved rounds, with the ratio to
looptime on stock asyncio. On a shared machine the CPU-time minimum is the
steadier number (descheduled time is not counted).

A second, smaller table shows where the designs differ most: 2,000 tasks
with 2,000 *distinct* deadlines (``sleep(1 + i / 1000)``), so the loop
jumps 2,000 times; looptime spins 42 no-op loop cycles before each jump.

looptime on uvloop is attempted too: looptime compresses time by patching
the selector of a stock loop, which uvloop does not have, so it is reported
as failing (with its error) rather than timed.

Run: ``.venv/bin/python benchmarks/virtual_time.py`` (``BENCH_QUICK=1`` for
a 1k-task smoke run). ``BENCH_TASKS=100000 BENCH_ROUNDS=3`` runs the issue's
100k-task size. ``VTIME_BEFORE=DIR`` (a directory holding another version's
``harn_async_trace`` package, e.g. from ``git archive main``) adds that
version's loops as "before" contenders in the same run, for a before/after
ratio measured under the same load.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import looptime
import trio
import trio.testing
import uvloop
from _harness import machine_line, quick

from harn_async_trace import MockClock
from harn_async_trace.loop import virtual_loop_factory

TASKS = int(os.environ.get("BENCH_TASKS", 1_000 if quick() else 10_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3 if quick() else 15))
END_S = 3600 + 99 + 5


# -- the workload, on asyncio and on trio --------------------------------------------


async def _asyncio_task(i: int) -> int:
    await asyncio.sleep(3600 + (i % 100))
    try:
        async with asyncio.timeout(5):
            await asyncio.sleep(10)
    except TimeoutError:
        return 1
    return 0


async def _asyncio_main() -> tuple[int, float]:
    results = await asyncio.gather(*(_asyncio_task(i) for i in range(TASKS)))
    return sum(results), asyncio.get_running_loop().time()


JUMP_TASKS = 500 if quick() else 2_000


async def _asyncio_jumps() -> tuple[int, float]:
    async def one(i: int) -> int:
        await asyncio.sleep(1 + i / 1000)
        return 1

    done = await asyncio.gather(*(one(i) for i in range(JUMP_TASKS)))
    return sum(done), asyncio.get_running_loop().time()


async def _trio_jumps() -> tuple[int, float]:
    out: list[int] = []

    async def one(i: int) -> None:
        await trio.sleep(1 + i / 1000)
        out.append(1)

    async with trio.open_nursery() as nursery:
        for i in range(JUMP_TASKS):
            nursery.start_soon(one, i)
    return sum(out), trio.current_time()


async def _trio_task(i: int, out: list[int]) -> None:
    await trio.sleep(3600 + (i % 100))
    with trio.move_on_after(5) as scope:
        await trio.sleep(10)
    out.append(1 if scope.cancelled_caught else 0)


async def _trio_main() -> tuple[int, float]:
    out: list[int] = []
    async with trio.open_nursery() as nursery:
        for i in range(TASKS):
            nursery.start_soon(_trio_task, i, out)
    return sum(out), trio.current_time()


# -- contenders: each returns (timeouts, final virtual time) ------------------------------


def ours_asyncio(workload: Callable[[], Any] = _asyncio_main) -> tuple[int, float]:
    factory = virtual_loop_factory(MockClock())
    with asyncio.Runner(loop_factory=factory) as runner:
        return cast(tuple[int, float], runner.run(workload()))


def ours_uvloop(workload: Callable[[], Any] = _asyncio_main) -> tuple[int, float]:
    factory = virtual_loop_factory(MockClock(), use_uvloop=True)
    return cast(tuple[int, float], uvloop.run(workload(), loop_factory=factory))


def looptime_asyncio(workload: Callable[[], Any] = _asyncio_main) -> tuple[int, float]:
    with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0)) as runner:
        return cast(tuple[int, float], runner.run(workload()))


def trio_mock_clock(workload: Callable[[], Any] = _trio_main) -> tuple[int, float]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return cast(tuple[int, float], trio.run(workload, clock=clock))


def load_before() -> Any:
    """Another version's package (``VTIME_BEFORE``) under its own name, or None."""
    root = os.environ.get("VTIME_BEFORE")
    if not root:
        return None
    package = Path(root) / "harn_async_trace"
    spec = importlib.util.spec_from_file_location(
        "harn_before", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["harn_before"] = module
    spec.loader.exec_module(module)
    return module


def before_contenders(workload: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    before = load_before() if "harn_before" not in sys.modules else sys.modules["harn_before"]
    if before is None:
        return {}

    def stock() -> Any:
        factory = before.virtual_loop_factory(before.MockClock())
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(workload())

    def uv() -> Any:
        factory = before.virtual_loop_factory(before.MockClock(), use_uvloop=True)
        return uvloop.run(workload(), loop_factory=factory)

    return {"before, stock asyncio": stock, "before, uvloop": uv}


def looptime_uvloop_error() -> str:
    """Try looptime on uvloop; return why it does not work."""
    loop = uvloop.new_event_loop()
    try:
        looptime.patch_event_loop(loop)  # type: ignore[arg-type]  # uvloop's Loop: what is being tried
    except Exception as exc:  # what we are reporting
        return f"{type(exc).__name__}: {exc}"
    else:
        return "patched without error (not timed)"
    finally:
        loop.__class__ = uvloop.Loop  # undo the half-applied patch so the loop can close
        loop.close()


def main() -> None:
    contenders: dict[str, Callable[[], tuple[int, float]]] = {
        "ours, stock asyncio": ours_asyncio,
        "ours, uvloop": ours_uvloop,
        "looptime, stock asyncio": looptime_asyncio,
        "trio MockClock(autojump_threshold=0)": trio_mock_clock,
        **before_contenders(_asyncio_main),
    }
    wall: dict[str, list[float]] = {label: [] for label in contenders}
    cpu: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(ROUNDS):
        for label, run in contenders.items():
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            timeouts, end = run()
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
            if timeouts != TASKS or round(end) != END_S:
                raise SystemExit(f"{label}: wrong result: {timeouts} timeouts, end {end}")

    base_wall = min(wall["looptime, stock asyncio"])
    base_cpu = min(cpu["looptime, stock asyncio"])
    print(machine_line())
    print()
    print(f"### Virtual time ({TASKS:,} tasks: sleep 3600+(i%100) s, then 5 s timeout "
          f"around a 10 s sleep; {ROUNDS} interleaved rounds)")  # fmt: skip
    print()
    print("| contender | wall best | wall median | CPU best | CPU median "
          "| vs looptime (CPU best) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for label in contenders:
        w, c = wall[label], cpu[label]
        print(f"| {label} | {min(w) * 1000:.0f} ms | {statistics.median(w) * 1000:.0f} ms "
              f"| {min(c) * 1000:.0f} ms | {statistics.median(c) * 1000:.0f} ms "
              f"| {min(c) / base_cpu:.2f}x |")  # fmt: skip
    print(f"| looptime, uvloop | fails | | {looptime_uvloop_error()} |")
    print()
    ours_cpu, ours_wall = min(cpu["ours, stock asyncio"]), min(wall["ours, stock asyncio"])
    verdict = "MET" if ours_cpu < base_cpu and ours_wall < base_wall else "MISS"
    print(f"- goal {verdict}: ours on asyncio faster than looptime: CPU "
          f"{ours_cpu * 1000:.0f} vs {base_cpu * 1000:.0f} ms ({base_cpu / ours_cpu:.2f}x), "
          f"wall {ours_wall * 1000:.0f} vs {base_wall * 1000:.0f} ms "
          f"({base_wall / ours_wall:.2f}x)")  # fmt: skip
    _print_jumps()
    print(f"- goal MET: ours runs on uvloop (virtual end time 3704 s, {TASKS:,} timeouts "
          "checked)")  # fmt: skip
    for flavour in ("stock asyncio", "uvloop"):
        before = cpu.get(f"before, {flavour}")
        if before:
            ratio = min(cpu[f"ours, {flavour}"]) / min(before)
            verdict = "MET" if ratio <= 1.10 else "MISS"
            print(f"- goal {verdict}: {flavour} no more than 10% slower than before: CPU best "
                  f"{ratio:.3f}x before")  # fmt: skip



def _print_jumps() -> None:
    contenders: dict[str, Callable[[], tuple[int, float]]] = {
        "ours, stock asyncio": lambda: ours_asyncio(_asyncio_jumps),
        "ours, uvloop": lambda: ours_uvloop(_asyncio_jumps),
        "looptime, stock asyncio": lambda: looptime_asyncio(_asyncio_jumps),
        "trio MockClock(autojump_threshold=0)": lambda: trio_mock_clock(_trio_jumps),
        **before_contenders(_asyncio_jumps),
    }
    cpu: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(max(3, ROUNDS // 3)):
        for label, run in contenders.items():
            gc.collect()
            start = time.process_time()
            done, end = run()
            cpu[label].append(time.process_time() - start)
            expected_end = 1 + (JUMP_TASKS - 1) / 1000
            if done != JUMP_TASKS or abs(end - expected_end) > 1e-6:
                raise SystemExit(f"{label}: wrong result: {done} done, end {end}")
    base = min(cpu["looptime, stock asyncio"])
    print()
    print(f"### Virtual time, {JUMP_TASKS:,} distinct deadlines ({JUMP_TASKS:,} autojumps; "
          "CPU time, best of interleaved rounds)")  # fmt: skip
    print()
    print("| contender | CPU best | vs looptime |")
    print("|---|---:|---:|")
    for label, samples in cpu.items():
        print(f"| {label} | {min(samples) * 1000:.0f} ms | {min(samples) / base:.2f}x |")
    print()


if __name__ == "__main__":
    main()
