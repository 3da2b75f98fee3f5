"""The boundary API inside anyio.run: asyncio (stock and uvloop) and trio backends.

What works where: task groups, ``anyio.to_thread.run_sync``, ``traced_parallel``,
``@step``, suspension/resume, drain and ``traced_start_soon`` work on every
backend; ``traced_spawn``,
``TracedPool`` and ``TracedChannel`` create asyncio tasks, so they need the
asyncio backend (under trio ``traced_spawn`` raises a RuntimeError saying so).
All runs use virtual time (``harn_async_trace.loop.anyio_backend_options``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest
from boundaries_support import dedent_tree, outline

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    TracedChannel,
    TracedPool,
    span,
    step,
    traced_drain,
    traced_parallel,
    traced_resume,
    traced_spawn,
    traced_start_soon,
    traced_suspension,
    use_collector,
)
from harn_async_trace.loop import anyio_backend_options

T = TypeVar("T")

BACKENDS = ("asyncio", "asyncio+uvloop", "trio")


def run_anyio(backend: str, main: Callable[[], Awaitable[T]]) -> tuple[T, SpanCollector]:
    """Run ``main`` with anyio on ``backend`` in virtual time, with a fresh collector bound."""
    collector = SpanCollector()
    name = backend.split("+")[0]
    options = anyio_backend_options(MockClock(), name, use_uvloop=backend.endswith("uvloop"))

    async def bound() -> T:
        with use_collector(collector):
            return await main()

    result = anyio.run(bound, backend=name, backend_options=options)
    return result, collector


def _shape(collector: SpanCollector) -> set[tuple[Any, ...]]:
    """Each span as (kind name, parent label, duration, status, links by target label)."""
    spans = collector.spans()
    label = {str(s.span_id): f"{s.kind} {s.name}" for s in spans}
    return {
        (
            f"{s.kind} {s.name}",
            label.get(str(s.parent_id)),
            s.duration_ms,
            s.metadata.get("status"),
            tuple(
                (label[link.span_id], link.attributes["relation"], link.attributes["index"])
                for link in s.links
            ),
        )
        for s in spans
    }


async def _sleep_in_span(name: str, seconds: float) -> float:
    with span(SpanKind.FN_CALL, name):
        await anyio.sleep(seconds)
    return seconds


@pytest.mark.parametrize("backend", BACKENDS)
class TestEveryBackend:
    def test_task_group_children_nest_under_caller(self, backend: str) -> None:
        """Spans opened in task-group children nest under the span that started them."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                async with anyio.create_task_group() as group:
                    group.start_soon(_sleep_in_span, "a", 1)
                    group.start_soon(_sleep_in_span, "b", 2)

        _, collector = run_anyio(backend, main)
        # trio may start the two children in either order, so ids are not compared.
        names = {s.span_id: s.name for s in collector.spans()}
        shape = {(s.name, names.get(s.parent_id or 0), s.duration_ms) for s in collector.spans()}
        assert shape == {("main", None, 2000), ("a", "main", 1000), ("b", "main", 2000)}

    def test_to_thread_run_sync_parents_correctly(self, backend: str) -> None:
        """anyio.to_thread.run_sync carries the context: the thread's span nests."""

        def in_thread() -> None:
            with span(SpanKind.TOOL_CALL, "thread"):
                pass

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                await anyio.to_thread.run_sync(in_thread)

        _, collector = run_anyio(backend, main)
        assert outline(collector.spans()) == dedent_tree("""
            #1 pipeline main 0ms
              #2 tool_call thread 0ms
        """)

    def test_parallel_tree_with_cap(self, backend: str) -> None:
        """traced_parallel keeps its exact tree, links and cap on every backend."""

        async def main() -> list[float]:
            branches = [_sleep_in_span(f"s{i}", sec) for i, sec in enumerate([3, 1, 2])]
            return await traced_parallel(branches, max_concurrent=2, name="fan")

        result, collector = run_anyio(backend, main)
        assert result == [3, 1, 2]
        # trio shuffles its run queue, so span ids vary there: compare by name.
        assert _shape(collector) == {
            ("parallel fan", None, 3000, "ok", ()),
            ("spawn fan[0]", None, 3000, "ok", (("parallel fan", "branch_of", "0"),)),
            ("spawn fan[1]", None, 1000, "ok", (("parallel fan", "branch_of", "1"),)),
            ("spawn fan[2]", None, 2000, "ok", (("parallel fan", "branch_of", "2"),)),
            ("fn_call s0", "spawn fan[0]", 3000, None, ()),
            ("fn_call s1", "spawn fan[1]", 1000, None, ()),
            ("fn_call s2", "spawn fan[2]", 2000, None, ()),
        }
        starts = {s.name: s.start_ms for s in collector.spans() if s.kind == SpanKind.SPAWN}
        assert starts == {"fan[0]": 0, "fan[1]": 0, "fan[2]": 1000}

    def test_parallel_failure_and_settle(self, backend: str) -> None:
        """A failing branch cancels the rest (and is raised); settle returns it in place."""

        async def fails() -> None:
            await anyio.sleep(1)
            raise ValueError("bad branch")

        async def main() -> list[Any]:
            with pytest.raises(ValueError, match="bad branch"):
                await traced_parallel([fails(), _sleep_in_span("slow", 10)], name="strict")
            return await traced_parallel([fails(), _sleep_in_span("ok", 2)], settle=True)

        settled, collector = run_anyio(backend, main)
        assert [type(r).__name__ for r in settled] == ["ValueError", "int"]
        status = {
            s.name: (s.duration_ms, s.metadata.get("status"))
            for s in collector.spans()
            if s.kind == SpanKind.SPAWN
        }
        assert status == {
            "strict[0]": (1000, "error"),
            "strict[1]": (1000, "cancelled"),
            "parallel[0]": (1000, "error"),
            "parallel[1]": (2000, "ok"),
        }
        assert collector.open_span_count() == 0

    def test_cancel_scope_around_parallel(self, backend: str) -> None:
        """move_on_after cancels the fan-out; every span ends cancelled at that instant."""

        async def main() -> None:
            with anyio.move_on_after(2.5):
                await traced_parallel([_sleep_in_span(f"s{i}", 10) for i in range(3)])

        _, collector = run_anyio(backend, main)
        ends = {(s.name, s.duration_ms, s.metadata.get("status")) for s in collector.spans()}
        assert ("parallel", 2500, "cancelled") in ends
        assert {("parallel[0]", 2500, "cancelled"), ("parallel[2]", 2500, "cancelled")} <= ends
        assert collector.open_span_count() == 0

    def test_step_suspension_and_drain(self, backend: str) -> None:
        """@step, suspension/resume and drain spans work on every backend."""

        @step("work")
        async def work() -> None:
            await anyio.sleep(1)

        async def main() -> None:
            with traced_suspension("wait") as suspended:
                await work()
            with traced_resume(suspended.token), traced_drain("d") as drain:
                drain.decide("item", "finish")

        _, collector = run_anyio(backend, main)
        assert outline(collector.spans()) == dedent_tree("""
            #1 suspension wait 1000ms
              #2 step work 1000ms
            #3 resume wait 0ms -> #1{relation=resumes}
              #4 drain d 0ms
                #5 drain_decision item 0ms decision=finish
        """)


    def test_parallel_with_tracing_disabled(self, backend: str) -> None:
        """With tracing off the fan-out still runs, in order, and records nothing."""

        async def main() -> list[float]:
            with use_collector(SpanCollector(enabled=False)):
                branches = [_sleep_in_span(f"s{i}", 3 - i) for i in range(3)]
                return await traced_parallel(branches, max_concurrent=2)

        result, collector = run_anyio(backend, main)
        assert result == [3, 2, 1]
        assert collector.spans() == []


    def test_start_soon_children_get_linked_spawn_spans(self, backend: str) -> None:
        """traced_start_soon: each child under a detached spawn span linked to the caller."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                async with anyio.create_task_group() as group:
                    traced_start_soon(group, _sleep_in_span, "a", 1, name="child-a")
                    traced_start_soon(group, _sleep_in_span, "b", 2, name="child-b")

        _, collector = run_anyio(backend, main)
        names = {s.span_id: s.name for s in collector.spans()}
        shape = {
            (
                s.name,
                names.get(s.parent_id or 0),
                s.duration_ms,
                s.metadata.get("status"),
                tuple((names[int(ln.span_id)], ln.attributes["relation"]) for ln in s.links),
            )
            for s in collector.spans()
        }
        assert shape == {
            ("main", None, 2000, None, ()),
            ("child-a", None, 1000, "ok", (("main", "spawned_from"),)),
            ("child-b", None, 2000, "ok", (("main", "spawned_from"),)),
            ("a", "child-a", 1000, None, ()),
            ("b", "child-b", 2000, None, ()),
        }

    def test_start_soon_failure_cancels_siblings(self, backend: str) -> None:
        """A failing child fails its span; the group cancels the sibling, whose span says so."""

        async def fails() -> None:
            await anyio.sleep(1)
            raise KeyError("gone")

        async def group_body() -> None:
            async with anyio.create_task_group() as group:
                traced_start_soon(group, fails, name="fails")
                traced_start_soon(group, _sleep_in_span, "long", 60, name="long")

        async def main() -> None:
            with pytest.raises(BaseExceptionGroup):
                await group_body()

        _, collector = run_anyio(backend, main)
        status = {s.name: (s.duration_ms, s.metadata.get("status")) for s in collector.spans()}
        assert status["fails"] == (1000, "error")
        assert status["long"] == (1000, "cancelled")
        assert collector.open_span_count() == 0


@pytest.mark.parametrize("backend", ["asyncio", "asyncio+uvloop"])
class TestAsyncioBackendOnly:
    def test_spawn_pool_and_channel(self, backend: str) -> None:
        """Task-based boundaries work inside anyio's asyncio backend."""

        async def main() -> list[float]:
            spawned = traced_spawn(_sleep_in_span("bg", 1), name="spawned")
            async with TracedPool(1, 1, name="pool") as pool:
                pooled = await pool.submit(_sleep_in_span, "job", 2, name="pooled")
            channel = TracedChannel("ch")
            channel.trigger(lambda v: _sleep_in_span("handler", v), name="h")
            await channel.emit(0.5)
            await channel.aclose()
            return [await spawned, pooled]

        result, collector = run_anyio(backend, main)
        assert result == [1, 2]
        kinds = sorted(str(s.kind) for s in collector.spans() if s.links)
        assert kinds == ["channel_match", "pool_dequeue"]  # spawn has no caller span here
        assert collector.open_span_count() == 0


def test_spawn_under_trio_explains_the_alternative() -> None:
    """Under trio traced_spawn raises a RuntimeError pointing at anyio task groups."""

    async def main() -> None:
        async def job() -> None:
            pass

        with pytest.raises(RuntimeError, match="anyio task group"):
            traced_spawn(job())

    run_anyio("trio", main)
