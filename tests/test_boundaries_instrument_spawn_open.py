"""instrument_asyncio opens a task's spawn span when the task is created, not at its first step.

So the span starts at ``create_task`` (the creator's work before it yields
is inside it), spawn span ids follow creation order, and a name the loop
gives the task after the factory returned (``create_task(..., name=...)``
on 3.11 and uvloop, ``set_name`` before the first step) reaches the span
through ``collector.rename``. Each test checks the span is already open
when ``create_task`` returns or times it from creation, which the
first-step span could not pass.
"""

from __future__ import annotations

import asyncio
import gc
import random
import warnings
from typing import Any

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import (
    Span,
    SpanCollector,
    SpanKind,
    advance_time,
    mock_time,
    span,
    use_collector,
)

MS = 1_000_000


async def _job() -> str:
    with span(SpanKind.FN_CALL, "job body"):
        await asyncio.sleep(0)
    return "done"


def _spawns(collector: SpanCollector) -> list[Span]:
    return sorted((s for s in collector.spans() if s.kind is SpanKind.SPAWN),
                  key=lambda s: s.span_id)


def _open_now(collector: SpanCollector) -> int:
    return collector.open_span_count()


class TestStart:
    def test_the_span_starts_at_create_task(self, traced: Traced, instrumented: Any) -> None:
        """The creator works 7 ms after create_task before it yields: the span holds those 7 ms."""
        seen: list[int] = []

        async def main() -> None:
            with span(SpanKind.PIPELINE, "creator"):
                traced.advance_ms(3)
                task = asyncio.create_task(_job(), name="job")
                seen.append(_open_now(traced.collector))
                traced.advance_ms(7)  # blocking work: the task cannot run yet
                await task

        traced.run(main)
        assert seen == [2]  # the creator's span and the task's, open before it ran
        creator = traced.by_name("creator")
        (spawn,) = _spawns(traced.collector)
        assert spawn.start_ns - creator.start_ns == 3 * MS
        assert spawn.duration_ns == 7 * MS
        assert spawn.name == "job"
        assert traced.by_name("job body").parent_id == spawn.span_id

    def test_under_mock_time_on_asyncio_run(self, instrumented: Any) -> None:
        """mock_time() + advance_time(): the span starts at the creation time, not a step later."""
        collector = SpanCollector()

        async def main() -> None:
            with use_collector(collector), span(SpanKind.PIPELINE, "creator"):
                advance_time(0.002)
                task = asyncio.create_task(_job())
                advance_time(0.005)
                await task

        with mock_time(start_wall_ms=1_700_000_000_000):
            asyncio.run(main())
        by_name = {s.name: s for s in collector.spans()}
        spawn = by_name["_job"]
        assert spawn.start_unix_ms == 1_700_000_000_002
        assert spawn.start_ns - by_name["creator"].start_ns == 2 * MS
        assert spawn.duration_ms == 5


class TestNames:
    def test_a_name_given_to_create_task(self, traced: Traced, instrumented: Any) -> None:
        """create_task(coro, name="x"): the span, open from creation, is called "x" (renamed
        at the first step where the loop names the task after the factory: 3.11, uvloop)."""
        seen: list[int] = []

        async def main() -> None:
            with span(SpanKind.PIPELINE, "creator"):
                task = asyncio.create_task(_job(), name="x")
                seen.append(_open_now(traced.collector))
                traced.advance_ms(4)
                await task

        traced.run(main)
        (spawn,) = _spawns(traced.collector)
        assert (seen, spawn.name, spawn.duration_ns) == ([2], "x", 4 * MS)

    def test_set_name_before_the_first_step(self, traced: Traced, instrumented: Any) -> None:
        seen: list[int] = []

        async def main() -> None:
            with span(SpanKind.PIPELINE, "creator"):
                task = asyncio.create_task(_job(), name="x")
                seen.append(_open_now(traced.collector))
                task.set_name("y")
                traced.advance_ms(2)
                await task

        traced.run(main)
        (spawn,) = _spawns(traced.collector)
        assert (seen, spawn.name, spawn.duration_ns) == ([2], "y", 2 * MS)

    def test_a_default_name_gives_the_coroutine_qualname(
        self, traced: Traced, instrumented: Any
    ) -> None:
        started: list[str] = []

        async def main() -> None:
            with span(SpanKind.PIPELINE, "creator"):
                task = asyncio.create_task(_job())
                started.append(task.get_name())
                traced.advance_ms(1)
                await task

        traced.run(main)
        (spawn,) = _spawns(traced.collector)
        assert started[0].startswith("Task-")
        assert (spawn.name, spawn.duration_ns) == ("_job", 1 * MS)


class TestOrder:
    def test_ids_follow_creation_order(self, traced: Traced, instrumented: Any) -> None:
        """100 tasks, a span opened after each create_task: each task's id comes before it."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "creator"):
                tasks = []
                for i in range(100):
                    tasks.append(asyncio.create_task(_job(), name=f"t{i}"))
                    with span(SpanKind.STEP, f"mark {i}"):
                        pass
                await asyncio.gather(*tasks)

        traced.run(main)
        by_name = {s.name: s for s in traced.collector.spans()}
        assert [by_name[f"t{i}"].span_id for i in range(100)] == list(range(2, 202, 2))
        assert [by_name[f"mark {i}"].span_id for i in range(100)] == list(range(3, 203, 2))


class TestCancelledBeforeTheFirstStep:
    def test_one_span_cancelled_from_creation_and_no_warning(
        self, traced: Traced, instrumented: Any
    ) -> None:
        """The span opened at creation is the one the done-callback ends (under the task's
        final name); the coroutine never ran and Python does not warn it was never awaited."""
        ran: list[bool] = []
        seen: list[int] = []

        async def never() -> None:
            ran.append(True)

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = asyncio.create_task(never(), name="never")
                seen.append(_open_now(traced.collector))
                task.set_name("never ran")
                traced.advance_ms(4)
                task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            traced.run(main)
            gc.collect()
        assert (ran, seen) == ([], [2])
        assert traced.collector.open_span_count() == 0
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 4ms
            #2 spawn never ran 4ms cancelled=true status=cancelled -> #1{relation=spawned_from}
        """)


class TestInterleaving:
    def test_many_tasks_with_errors_and_cancellations(
        self, traced: Traced, instrumented: Any
    ) -> None:
        """30 requests x 4 tasks, interleaved at random; some fail, some are cancelled before
        or while running: each spawn span starts at its task's creation, ids follow creation
        order, links and children are right and nothing is left open."""
        rng = random.Random(7)
        plans = {(r, t): rng.choice(["ok", "ok", "error", "cancel early", "cancel late"])
                 for r in range(30) for t in range(4)}
        steps = {key: rng.randint(0, 3) for key in plans}
        created: list[tuple[int, int]] = []
        created_at: dict[tuple[int, int], int] = {}
        clock = traced.clock

        async def body(r: int, t: int) -> None:
            with span(SpanKind.TOOL_CALL, f"tool {r}.{t}"):
                for _ in range(steps[r, t]):
                    await asyncio.sleep(0)
                if plans[r, t] == "cancel late":
                    await asyncio.Event().wait()
                if plans[r, t] == "error":
                    raise ValueError(f"{r}.{t}")

        async def request(r: int) -> None:
            await asyncio.sleep(0)
            with span(SpanKind.PIPELINE, f"request {r}"):
                tasks = {}
                for t in range(4):
                    created.append((r, t))
                    created_at[r, t] = clock.monotonic_ns()
                    tasks[t] = asyncio.create_task(body(r, t), name=f"t {r}.{t}")
                    clock.advance_ns(rng.randint(0, 3) * MS)
                for t, task in tasks.items():
                    if plans[r, t] == "cancel early":
                        task.cancel()
                for _ in range(4):
                    await asyncio.sleep(0)
                for t, task in tasks.items():
                    if plans[r, t] == "cancel late":
                        task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

        async def main() -> None:
            await asyncio.gather(*(request(r) for r in range(30)))

        traced.run(main)
        collector = traced.collector
        assert collector.open_span_count() == 0
        by_name = {s.name: s for s in collector.spans()}
        spawns = [by_name[f"t {r}.{t}"] for r, t in created]
        assert [s.span_id for s in spawns] == sorted(s.span_id for s in spawns)
        first = min(s.start_ns - created_at[key] for s, key in zip(spawns, created, strict=True))
        for spawn, key in zip(spawns, created, strict=True):
            r, t = key
            # One base for all: the span's start is its creation time on the same clock.
            assert spawn.start_ns - created_at[key] == first, key
            assert spawn.parent_id is None
            assert spawn.links[0].span_id == str(by_name[f"request {r}"].span_id)
            status = {"ok": "ok", "error": "error"}.get(plans[key], "cancelled")
            assert spawn.metadata["status"] == status, key
            tool = by_name.get(f"tool {r}.{t}")
            if plans[key] == "cancel early":
                assert tool is None, key
            else:
                assert tool is not None, key
                assert tool.parent_id == spawn.span_id, key
