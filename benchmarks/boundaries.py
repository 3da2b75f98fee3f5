"""Async boundaries: cost per task/branch/job of our traced boundaries vs plain asyncio.

Each case runs the same workload (N trivial coroutines, each opening one
``fn_call`` span inside) four ways in the same process, interleaved round by
round: the plain asyncio primitive and our boundary, each with tracing on and
off. Reported: ns per unit (task, branch, job) and two ratios: boundary vs
plain with tracing on (what the boundary's own spans and links cost on top of
the same inner spans) and with tracing off (what the wrapper costs when
tracing is disabled).

* spawn:    ``traced_spawn`` vs ``loop.create_task``, then gather all;
* parallel: ``traced_parallel`` vs ``asyncio.gather``;
* capped:   ``traced_parallel(max_concurrent=64)`` vs gather behind a semaphore;
* pool:     ``TracedPool(8, N)`` vs 8 workers on an ``asyncio.Queue``;
* task group: ``TracedTaskGroup`` vs ``asyncio.TaskGroup``, N tasks;
* queue:    ``TracedQueue`` (``put_nowait`` + ``async with receive()``) vs
  ``asyncio.Queue`` (``put_nowait`` + ``get``), N items through one consumer;
* instrumented, no span: N ``create_task`` with no span open, with and
  without ``instrument_asyncio()`` (what the factory costs a task it leaves
  alone);
* instrumented, under a span: the same N tasks created inside an open span,
  with and without ``instrument_asyncio()`` (each then gets a linked
  ``spawn`` span; compare with ``traced_spawn`` in the spawn case).

Run: ``.venv/bin/python benchmarks/boundaries.py`` (``BENCH_QUICK=1`` for a
smoke run). uvloop is used for every contender with ``--uvloop``;
``--only TEXT`` runs the cases whose name contains TEXT, and ``--rounds N``
takes the best of N rounds instead of 7.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvloop
from _harness import Row, best_ns, machine_line, print_table, quick

from harn_async_trace import (
    SpanCollector,
    SpanKind,
    TracedPool,
    TracedQueue,
    TracedTaskGroup,
    instrument_asyncio,
    span,
    traced_parallel,
    traced_spawn,
    use_collector,
)


def _option(flag: str) -> str | None:
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv[:-1] else None


N = 2_000 if quick() else 10_000
ROUNDS = 3 if quick() else int(_option("--rounds") or 7)
USE_UVLOOP = "--uvloop" in sys.argv
ONLY = _option("--only") or ""


async def _unit(i: int) -> int:
    with span(SpanKind.FN_CALL, "unit"):
        return i


# -- workloads -------------------------------------------------------------------


async def _plain_spawn() -> None:
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(_unit(i)) for i in range(N)])


async def _traced_spawn() -> None:
    await asyncio.gather(*[traced_spawn(_unit(i), name="unit") for i in range(N)])


async def _plain_gather() -> None:
    await asyncio.gather(*(_unit(i) for i in range(N)))


async def _traced_gather() -> None:
    await traced_parallel([_unit(i) for i in range(N)])


async def _plain_capped() -> None:
    gate = asyncio.Semaphore(64)

    async def gated(i: int) -> int:
        async with gate:
            return await _unit(i)

    await asyncio.gather(*(gated(i) for i in range(N)))


async def _traced_capped() -> None:
    await traced_parallel([_unit(i) for i in range(N)], max_concurrent=64)


async def _plain_pool() -> None:
    queue: asyncio.Queue[tuple[int, asyncio.Future[int]] | None] = asyncio.Queue()

    async def worker() -> None:
        while (job := await queue.get()) is not None:
            i, future = job
            future.set_result(await _unit(i))

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    loop = asyncio.get_running_loop()
    futures = []
    for i in range(N):
        future: asyncio.Future[int] = loop.create_future()
        queue.put_nowait((i, future))
        futures.append(future)
    await asyncio.gather(*futures)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


async def _traced_pool() -> None:
    async with TracedPool(8, N, name="bench") as pool:
        await asyncio.gather(*[pool.submit(_unit, i, name="unit") for i in range(N)])


async def _plain_group() -> None:
    async with asyncio.TaskGroup() as group:
        for i in range(N):
            group.create_task(_unit(i))


async def _traced_group() -> None:
    async with TracedTaskGroup(name="bench") as group:
        for i in range(N):
            group.create_task(_unit(i))


async def _plain_queue() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(N):
        queue.put_nowait(i)
    for _ in range(N):
        await _unit(await queue.get())


async def _traced_queue() -> None:
    queue: TracedQueue[int] = TracedQueue(name="bench")
    for i in range(N):
        queue.put_nowait(i)
    for _ in range(N):
        async with queue.receive() as i:
            await _unit(i)


async def _spawn_under_span() -> None:
    with span(SpanKind.PIPELINE, "creator"):
        await _plain_spawn()


def _instrumented(work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        # Inside the loop: instrument_asyncio() puts its factory on the running loop.
        with instrument_asyncio():
            await work()

    return run


Case = tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]], str]
CASES: dict[str, Case] = {
    "spawn": (_plain_spawn, _traced_spawn, "boundary"),
    "parallel": (_plain_gather, _traced_gather, "boundary"),
    "parallel cap 64": (_plain_capped, _traced_capped, "boundary"),
    "pool 8 workers": (_plain_pool, _traced_pool, "boundary"),
    "task group": (_plain_group, _traced_group, "boundary"),
    "queue": (_plain_queue, _traced_queue, "boundary"),
    "create_task, no span open": (_plain_spawn, _instrumented(_plain_spawn), "instrumented"),
    "create_task under a span": (
        _spawn_under_span,
        _instrumented(_spawn_under_span),
        "instrumented",
    ),
}


def main() -> None:
    factory = uvloop.new_event_loop if USE_UVLOOP else asyncio.new_event_loop
    runner = asyncio.Runner(loop_factory=factory)
    on = SpanCollector()
    off = SpanCollector(enabled=False)

    def contender(work: Callable[[], Awaitable[None]], collector: SpanCollector) -> Any:
        async def bound() -> None:
            with use_collector(collector):
                await work()

        return lambda: runner.run(bound())

    loop_name = "uvloop" if USE_UVLOOP else "asyncio"
    rows: list[Row] = []
    for case, (plain, traced, ours_label) in CASES.items():
        if ONLY not in case:
            continue
        best = best_ns(
            {
                "plain, tracing on": contender(plain, on),
                "ours, tracing on": contender(traced, on),
                "plain, tracing off": contender(plain, off),
                "ours, tracing off": contender(traced, off),
            },
            number=1,
            rounds=ROUNDS,
            per_call=N,
            between=on.take_spans,
        )
        for state in ("on", "off"):
            base = best[f"plain, tracing {state}"]
            ours = best[f"ours, tracing {state}"]
            rows.append(Row(f"{case}: plain asyncio, tracing {state}", base, "ns/unit", ""))
            rows.append(
                Row(
                    f"{case}: {ours_label}, tracing {state}",
                    ours,
                    "ns/unit",
                    f"{ours / base:.2f}x plain, +{ours - base:,.0f} ns/unit",
                )
            )
    runner.close()
    print(machine_line())
    print_table(f"Async boundaries on {loop_name} (N = {N:,} units, best of {ROUNDS})", rows)


if __name__ == "__main__":
    main()
