"""instrument_asyncio: plain asyncio tasks created under a span get linked spawn spans."""

from __future__ import annotations

import asyncio
import gc
import random
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest
from boundaries_support import LOOPS, Traced, dedent_tree, new_loop, outline, spawn_names

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    TracedChannel,
    TracedPool,
    TracedQueue,
    TracedTaskGroup,
    instrument_asyncio,
    span,
    traced_parallel,
    traced_spawn,
    traced_start_soon,
    use_collector,
)


async def _leaf(label: str) -> str:
    with span(SpanKind.FN_CALL, label):
        await asyncio.sleep(0)
    return label


class TestEachConstruct:
    def test_create_task_outlives_its_creator(self, traced: Traced, instrumented: Any) -> None:
        """A background task: a detached spawn span linked to the creator, children under it.

        The span starts at create_task, so it holds the creator's 10 ms before the task ran.
        """

        async def background() -> None:
            await asyncio.sleep(0)
            traced.advance_ms(50)
            with span(SpanKind.TOOL_CALL, "store"):
                traced.advance_ms(5)

        async def main() -> None:
            with span(SpanKind.PIPELINE, "request"):
                task = asyncio.create_task(background(), name="remember")
                traced.advance_ms(10)
            await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline request 10ms
            #2 spawn remember 65ms status=ok -> #1{relation=spawned_from}
              #3 tool_call store 5ms
        """)

    def test_every_way_of_making_a_task(self, traced: Traced, instrumented: Any) -> None:
        """create_task, loop.create_task, ensure_future, gather and TaskGroup: one span each."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            with span(SpanKind.PIPELINE, "main"):
                await asyncio.create_task(_leaf("a"), name="create_task")
                await loop.create_task(_leaf("b"), name="loop.create_task")
                await asyncio.ensure_future(_leaf("c"))
                await asyncio.gather(_leaf("d"), _leaf("e"))
                async with asyncio.TaskGroup() as group:
                    group.create_task(_leaf("f"), name="group task")

        traced.run(main)
        spans = traced.collector.spans()
        spawns = {s.span_id: s for s in spans if s.kind is SpanKind.SPAWN}
        assert sorted(s.name for s in spawns.values()) == sorted(
            ["create_task", "loop.create_task", "group task"] + ["_leaf"] * 3
        )
        main_id = traced.by_name("main").span_id
        for spawn in spawns.values():
            assert spawn.parent_id is None
            assert [(link.span_id, link.attributes) for link in spawn.links] == [
                (str(main_id), {"relation": "spawned_from"})
            ]
            assert spawn.metadata == {"status": "ok"}
        leaves = [s for s in spans if s.kind is SpanKind.FN_CALL]
        assert len(leaves) == 6
        assert all(leaf.parent_id in spawns for leaf in leaves)
        assert len({leaf.parent_id for leaf in leaves}) == 6

    def test_task_name_given_later_is_used(self, traced: Traced, instrumented: Any) -> None:
        """The span is named after the task as the caller named it, however the loop names it."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = asyncio.create_task(_leaf("x"))
                task.set_name("renamed before it ran")
                await task

        traced.run(main)
        assert spawn_names(traced.collector) == ["renamed before it ran"]

    def test_new_trace_is_followed(self, traced: Traced, instrumented: Any) -> None:
        """A task created under a new_trace span carries that span's trace id."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "service"):
                with span(SpanKind.STEP, "request", new_trace=True):
                    await asyncio.create_task(_leaf("work"), name="handler")

        traced.run(main)
        request = traced.by_name("request")
        assert request.trace_id != traced.by_name("service").trace_id
        assert traced.by_name("handler").trace_id == request.trace_id
        assert traced.by_name("handler").links[0].trace_id == request.trace_id
        assert traced.by_name("work").trace_id == request.trace_id


class TestUntouched:
    def test_no_open_span_leaves_the_task_alone(self, traced: Traced, instrumented: Any) -> None:
        """With no span open the task runs the caller's own coroutine, and no span is recorded."""

        async def main() -> bool:
            coro = asyncio.sleep(0)
            task = asyncio.create_task(coro)
            await task
            return task.get_coro() is coro

        assert traced.run(main) is True
        assert traced.collector.spans() == []

    def test_disabled_collector_leaves_the_task_alone(
        self, traced: Traced, instrumented: Any
    ) -> None:
        """With tracing off nothing is wrapped, even inside a (disabled) span block."""
        traced.collector.enabled = False

        async def main() -> bool:
            with span(SpanKind.PIPELINE, "off"):
                coro = asyncio.sleep(0)
                task = asyncio.create_task(coro)
                await task
            return task.get_coro() is coro

        assert traced.run(main) is True

    def test_span_of_another_collector_does_not_count(self, instrumented: Any) -> None:
        """Only spans of the current collector decide: one open in another is ignored."""
        other, current = SpanCollector(), SpanCollector()

        async def main() -> None:
            with use_collector(other), span(SpanKind.PIPELINE, "elsewhere"):
                with use_collector(current):
                    await asyncio.create_task(_leaf("inside"))

        asyncio.run(main())
        assert [s.name for s in current.spans()] == ["inside"]
        assert [s.name for s in other.spans()] == ["elsewhere"]

    @pytest.mark.parametrize(
        "boundary", ["traced_spawn", "traced_parallel", "pool", "channel", "group", "anyio"]
    )
    def test_library_boundaries_not_wrapped_twice(self, traced: Traced, boundary: str) -> None:
        """The library's own boundaries give the same trace with instrumentation on and off."""

        async def work() -> None:
            with span(SpanKind.FN_CALL, "work"):
                await asyncio.sleep(0)

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                if boundary == "traced_spawn":
                    await traced_spawn(work(), name="job")
                elif boundary == "traced_parallel":
                    await traced_parallel([work(), work()])
                elif boundary == "pool":
                    async with TracedPool(2, 2, name="pool") as pool:
                        await pool.submit(work, name="job")
                elif boundary == "channel":
                    channel = TracedChannel("events")
                    channel.trigger(lambda _value: work(), name="handler")
                    await channel.emit(1)
                    await channel.aclose()
                elif boundary == "group":
                    async with TracedTaskGroup() as group:
                        group.create_task(work())
                else:
                    async with anyio.create_task_group() as tg:
                        traced_start_soon(tg, work, name="child")

        traced.run(main)
        expected = traced.outline()
        traced.collector.reset()
        with instrument_asyncio():
            traced.run(main)
        assert traced.outline() == expected


    def test_tasks_inside_a_traced_start_soon_child_are_traced(
        self, traced: Traced, instrumented: Any
    ) -> None:
        """Only the anyio child itself is left alone: tasks it creates get their spans."""

        async def child() -> None:
            with span(SpanKind.STEP, "inside"):
                await asyncio.create_task(_leaf("leaf"), name="grandchild")

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                async with anyio.create_task_group() as tg:
                    traced_start_soon(tg, child, name="child")

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
            #2 spawn child 0ms status=ok -> #1{relation=spawned_from}
              #3 step inside 0ms
            #4 spawn grandchild 0ms status=ok -> #3{relation=spawned_from}
              #5 fn_call leaf 0ms
        """)


class TestOutcomes:
    def test_error_is_recorded(self, traced: Traced, instrumented: Any) -> None:
        """A task that raises: its spawn span has status=error and the error."""

        async def fails() -> None:
            raise KeyError("missing")

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = asyncio.create_task(fails(), name="fails")
            with pytest.raises(KeyError):
                await task

        traced.run(main)
        assert traced.by_name("fails").metadata == {
            "status": "error",
            "error": "'missing'",
            "error_type": "KeyError",
        }

    def test_cancelled_while_running(self, traced: Traced, instrumented: Any) -> None:
        """Cancelling a running task ends its span and the spans inside it as cancelled."""

        async def waits() -> None:
            with span(SpanKind.LLM_CALL, "waiting"):
                await asyncio.Event().wait()

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = asyncio.create_task(waits(), name="waits")
            await asyncio.sleep(0)
            traced.advance_ms(4)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
            #2 spawn waits 4ms cancelled=true status=cancelled -> #1{relation=spawned_from}
              #3 llm_call waiting 4ms cancelled=true
        """)

    def test_cancelled_before_first_step(self, traced: Traced, instrumented: Any) -> None:
        """A task cancelled before it ran still gets a (cancelled) span, and no warning."""
        ran: list[bool] = []

        async def never() -> None:
            ran.append(True)

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = asyncio.create_task(never(), name="never")
                task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            traced.run(main)
            gc.collect()
        assert ran == []
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
            #2 spawn never 0ms cancelled=true status=cancelled -> #1{relation=spawned_from}
        """)

    def test_wait_for_timeout(self, traced: Traced, instrumented: Any) -> None:
        """A timed-out wait_for: the cancelled inner work is recorded as such, nothing left open."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(_leaf_forever(), timeout=0.001)

        traced.run(main)
        assert traced.collector.open_span_count() == 0
        assert traced.by_name("waiting forever").metadata == {"cancelled": True}


async def _leaf_forever() -> None:
    with span(SpanKind.FN_CALL, "waiting forever"):
        await asyncio.Event().wait()


class TestInterleaving:
    def test_many_tasks_spawning_tasks(self, traced: Traced, instrumented: Any) -> None:
        """40 requests each starting 5 tasks, interleaved at random: every span rightly parented."""
        rng = random.Random(11)
        steps = {(r, t): rng.randint(0, 3) for r in range(40) for t in range(5)}

        async def task_body(r: int, t: int) -> None:
            with span(SpanKind.TOOL_CALL, f"tool {r}.{t}"):
                for _ in range(steps[r, t]):
                    await asyncio.sleep(0)

        async def request(r: int) -> None:
            with span(SpanKind.PIPELINE, f"request {r}"):
                tasks = [asyncio.create_task(task_body(r, t), name=f"t {r}.{t}") for t in range(5)]
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)

        async def main() -> None:
            await asyncio.gather(*(request(r) for r in range(40)))

        traced.run(main)
        by_name = {s.name: s for s in traced.collector.spans()}
        for r, t in steps:
            spawn = by_name[f"t {r}.{t}"]
            assert spawn.links[0].span_id == str(by_name[f"request {r}"].span_id)
            assert by_name[f"tool {r}.{t}"].parent_id == spawn.span_id
        # The requests themselves are gather's tasks, created with no span open: untouched.
        assert all(by_name[f"request {r}"].parent_id is None for r in range(40))
        assert len(spawn_names(traced.collector)) == 200


def _run_on(kind: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=lambda: new_loop(kind, MockClock())) as runner:
        return runner.run(main())


@pytest.mark.parametrize("kind", LOOPS)
def test_queue_consumer_task_links_both_ways(kind: str, instrumented: Any) -> None:
    """A consumer task started under a span, fed by a TracedQueue: both boundaries linked.

    The spawn span opens at create_task, before the put: it takes the lower id.
    """
    collector = SpanCollector()

    async def consumer(queue: TracedQueue[str]) -> None:
        async with queue.receive() as item:
            with span(SpanKind.TOOL_CALL, f"handle {item}"):
                pass

    async def main() -> None:
        with use_collector(collector), span(SpanKind.PIPELINE, "main"):
            queue: TracedQueue[str] = TracedQueue(name="jobs")
            task = asyncio.create_task(consumer(queue), name="consumer")
            await queue.put("a")
            await task

    _run_on(kind, main)
    assert outline(collector.spans()) == dedent_tree("""
        #1 pipeline main 0ms
          #3 channel_emit jobs 0ms
        #2 spawn consumer 0ms status=ok -> #1{relation=spawned_from}
          #4 channel_match jobs 0ms queue_wait_ms=0 status=ok -> #3{relation=consumed}
            #5 tool_call handle a 0ms
    """)
