"""Virtual time: our loop (asyncio, uvloop) vs looptime and trio's MockClock, same run.

Workload (the issue's): 10k tasks; each sleeps 3600 + (i % 100) s, then puts a
5 s timeout around a 10 s sleep. Every contender must finish at virtual time
3704 s with 10k timeouts. Wall time and CPU time (this process) of a whole
run are reported, best and median of interleaved rounds, with the ratio to
looptime on stock asyncio. On a shared machine the CPU-time minimum is the
steadier number (descheduled time is not counted).

looptime on uvloop is attempted too: looptime compresses time by patching
the selector of a stock loop, which uvloop does not have, so it is reported
as failing (with its error) rather than timed.

Run: ``.venv/bin/python benchmarks/virtual_time.py`` (``BENCH_QUICK=1`` for
a 1k-task smoke run).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import looptime
import trio
import trio.testing
import uvloop
from _harness import machine_line, quick

from harn_async_trace import MockClock
from harn_async_trace.loop import virtual_loop_factory

TASKS = 1_000 if quick() else 10_000
ROUNDS = 3 if quick() else 15
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


def ours_asyncio() -> tuple[int, float]:
    factory = virtual_loop_factory(MockClock())
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_asyncio_main())


def ours_uvloop() -> tuple[int, float]:
    factory = virtual_loop_factory(MockClock(), use_uvloop=True)
    return uvloop.run(_asyncio_main(), loop_factory=factory)


def looptime_asyncio() -> tuple[int, float]:
    with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0)) as runner:
        return runner.run(_asyncio_main())


def trio_mock_clock() -> tuple[int, float]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(_trio_main, clock=clock)


def looptime_uvloop_error() -> str:
    """Try looptime on uvloop; return why it does not work."""
    loop = uvloop.new_event_loop()
    try:
        looptime.patch_event_loop(loop)  # type: ignore[arg-type]
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
    print("- goal MET: ours runs on uvloop (virtual end time 3704 s, 10k timeouts checked)"
          if TASKS == 10_000 else "- quick run: uvloop result checked")  # fmt: skip


if __name__ == "__main__":
    main()
