"""TracedTaskGroup: asyncio.TaskGroup's behaviour exactly, with a parallel span and linked tasks."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import random
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import (
    SpanCollector,
    SpanKind,
    TracedTaskGroup,
    instrument_asyncio,
    span,
    use_collector,
)


def _group(group_cls: type[asyncio.TaskGroup]) -> asyncio.TaskGroup:
    return TracedTaskGroup(name="g") if group_cls is TracedTaskGroup else group_cls()


def _describe(exc: BaseException | None) -> Any:
    """What a test can observe of an exception: its type, message and sub-exceptions."""
    if exc is None:
        return None
    if isinstance(exc, BaseExceptionGroup):
        subs = sorted((_describe(e) for e in exc.exceptions), key=repr)
        return (type(exc).__name__, exc.message, subs)
    return (type(exc).__name__, str(exc))


def _task_states(tasks: list[asyncio.Task[Any]]) -> list[str]:
    states = []
    for task in tasks:
        if not task.done():
            states.append("pending")
        elif task.cancelled():
            states.append("cancelled")
        elif task.exception() is not None:
            states.append(f"error:{task.exception()}")
        else:
            states.append(f"ok:{task.result()}")
    return states


async def _failing_child(group_cls: type[asyncio.TaskGroup]) -> Any:
    """One child fails: the other is cancelled and the error comes out in an ExceptionGroup."""

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad input")

    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    tasks: list[asyncio.Task[Any]] = []
    try:
        async with _group(group_cls) as group:
            tasks.append(group.create_task(slow()))
            tasks.append(group.create_task(fails()))
    except BaseException as exc:
        return _describe(exc), _task_states(tasks)
    return None, _task_states(tasks)


async def _two_failures_and_body_error(group_cls: type[asyncio.TaskGroup]) -> Any:
    """Two children fail and the body raises too: all three end up in the group."""

    async def fails(tag: str) -> None:
        raise KeyError(tag)

    tasks: list[asyncio.Task[Any]] = []
    try:
        async with _group(group_cls) as group:
            tasks.append(group.create_task(fails("a")))
            tasks.append(group.create_task(fails("b")))
            await asyncio.sleep(0)
            raise RuntimeError("body")
    except BaseException as exc:
        return _describe(exc), _task_states(tasks)


async def _parent_cancelled(group_cls: type[asyncio.TaskGroup]) -> Any:
    """The task running the group is cancelled: children are cancelled, CancelledError goes on."""
    tasks: list[asyncio.Task[Any]] = []
    entered = asyncio.Event()

    async def host() -> None:
        async with _group(group_cls) as group:
            tasks.append(group.create_task(asyncio.sleep(10)))
            entered.set()
            await asyncio.sleep(10)

    runner = asyncio.create_task(host())
    await entered.wait()
    runner.cancel()
    try:
        await runner
    except BaseException as exc:
        return _describe(exc), _task_states(tasks), runner.cancelled()
    return None, _task_states(tasks), runner.cancelled()


def _refusal(group: asyncio.TaskGroup) -> str:
    """The RuntimeError create_task gives on ``group`` (its repr made neutral)."""
    coro = asyncio.sleep(0)
    try:
        group.create_task(coro)
    except RuntimeError as exc:
        return str(exc).replace(repr(group), "<group>")
    finally:
        coro.close()
    return "accepted"


async def _create_after_close(group_cls: type[asyncio.TaskGroup]) -> Any:
    """create_task on a finished group or one never entered is TaskGroup's RuntimeError."""
    group = _group(group_cls)
    errors = [_refusal(group)]
    async with group:
        pass
    errors.append(_refusal(group))
    try:
        async with group:
            pass
    except RuntimeError as exc:
        errors.append(str(exc).replace(repr(group), "<group>"))
    return errors


async def _timeout_around_group(group_cls: type[asyncio.TaskGroup]) -> Any:
    """asyncio.timeout around the group: TimeoutError, every child cancelled."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.timeout(0.01):
            async with _group(group_cls) as group:
                tasks.append(group.create_task(asyncio.sleep(10)))
                tasks.append(group.create_task(asyncio.sleep(10)))
    except BaseException as exc:
        return _describe(exc), _task_states(tasks)
    return None, _task_states(tasks)


async def _create_from_child(group_cls: type[asyncio.TaskGroup]) -> Any:
    """A child adds a task to its own group while the group is waiting in __aexit__."""
    order: list[str] = []
    tasks: list[asyncio.Task[Any]] = []

    async with _group(group_cls) as group:

        async def second() -> str:
            order.append("second")
            return "2"

        async def first() -> str:
            await asyncio.sleep(0)
            tasks.append(group.create_task(second()))
            order.append("first")
            return "1"

        tasks.append(group.create_task(first()))
    return order, _task_states(tasks)


SCENARIOS: dict[str, Callable[[type[asyncio.TaskGroup]], Awaitable[Any]]] = {
    "failing child cancels siblings": _failing_child,
    "two failures and a body error": _two_failures_and_body_error,
    "parent cancelled": _parent_cancelled,
    "create_task after close": _create_after_close,
    "timeout around the group": _timeout_around_group,
    "create_task from a child": _create_from_child,
}


class TestSameAsTaskGroup:
    @pytest.mark.parametrize("scenario", list(SCENARIOS))
    @pytest.mark.parametrize("tracing", [True, False], ids=["tracing", "disabled"])
    def test_observable_behaviour_matches(
        self, traced: Traced, scenario: str, tracing: bool
    ) -> None:
        """Errors, ExceptionGroup contents and task states are TaskGroup's, tracing on or off."""
        traced.collector.enabled = tracing
        run = SCENARIOS[scenario]
        assert traced.run(lambda: run(TracedTaskGroup)) == traced.run(
            lambda: run(asyncio.TaskGroup)
        )
        assert traced.collector.open_span_count() == 0

    def test_not_a_coroutine_is_the_same_type_error(self, traced: Traced) -> None:
        """A non-coroutine is refused with TaskGroup's TypeError, before any span opens."""

        async def main(group_cls: type[asyncio.TaskGroup]) -> str:
            async with _group(group_cls) as group:
                with pytest.raises(TypeError) as info:
                    group.create_task(42)  # type: ignore[arg-type]  # the point of the test
            return str(info.value)

        assert traced.run(lambda: main(TracedTaskGroup)) == traced.run(
            lambda: main(asyncio.TaskGroup)
        )
        assert [s.kind for s in traced.collector.spans()] == [SpanKind.PARALLEL]

    def test_is_a_task_group(self) -> None:
        """It is an asyncio.TaskGroup (isinstance checks keep working); bad names are refused."""
        assert isinstance(TracedTaskGroup(), asyncio.TaskGroup)
        with pytest.raises(TypeError, match="name must be a str, got int"):
            TracedTaskGroup(name=3)  # type: ignore[arg-type]  # the point of the test


class TestTree:
    def test_group_and_tasks(self, traced: Traced) -> None:
        """A parallel span under the caller; each task a linked spawn span; block work nests."""

        async def child(label: str, ms: int) -> str:
            with span(SpanKind.TOOL_CALL, label):  # both open at 0; the clock is shared
                await asyncio.sleep(0)
                traced.advance_ms(ms)
            return label

        async def main() -> list[str]:
            with span(SpanKind.PIPELINE, "main"):
                async with TracedTaskGroup(name="tools") as group:
                    first = group.create_task(child("search", 5))
                    second = group.create_task(child("calc", 3), name="calc")
                    with span(SpanKind.STEP, "in the block"):
                        pass
            return [first.result(), second.result(), second.get_name()]

        assert traced.run(main) == ["search", "calc", "calc"]
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 8ms
              #2 parallel tools 8ms branches=2 status=ok
                #5 step in the block 0ms
            #3 spawn tools[0] 5ms status=ok -> #2{relation=branch_of,index=0}
              #6 tool_call search 5ms
            #4 spawn calc 8ms status=ok -> #2{relation=branch_of,index=1}
              #7 tool_call calc 8ms
        """)

    def test_failure_records_error_and_cancelled_sibling(self, traced: Traced) -> None:
        """The failing task's span has the error; the cancelled one says so; the group counts."""

        async def fails() -> None:
            await asyncio.sleep(0)
            traced.advance_ms(2)
            raise ValueError("bad input")

        async def waits() -> None:
            with span(SpanKind.LLM_CALL, "slow"):
                await asyncio.sleep(10)

        async def group() -> None:
            async with TracedTaskGroup(name="g") as tasks:
                tasks.create_task(waits(), name="waits")
                tasks.create_task(fails(), name="fails")

        async def main() -> None:
            with pytest.raises(ExceptionGroup):
                await group()

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 parallel g 2ms branches=2 branches_cancelled=1 error=unhandled errors in a \
TaskGroup (1 sub-exception) error_type=ExceptionGroup failed=1 status=error
            #2 spawn waits 2ms cancelled=true status=cancelled -> #1{relation=branch_of,index=0}
              #4 llm_call slow 2ms cancelled=true
            #3 spawn fails 2ms error=bad input error_type=ValueError status=error \
-> #1{relation=branch_of,index=1}
        """)

    def test_cancelled_before_first_step(self, traced: Traced) -> None:
        """Tasks the group cancels before they ever ran get closed spans and no warning."""
        ran: list[str] = []

        async def never(label: str) -> None:
            ran.append(label)

        async def group() -> None:
            async with TracedTaskGroup(name="g") as tasks:
                tasks.create_task(never("a"))
                tasks.create_task(never("b"))
                raise LookupError("body fails first")

        async def main() -> None:
            with pytest.raises(ExceptionGroup):
                await group()

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            traced.run(main)
            gc.collect()
        assert ran == []
        spawns = [s for s in traced.collector.spans() if s.kind is SpanKind.SPAWN]
        assert [(s.name, s.metadata["status"]) for s in spawns] == [
            ("g[0]", "cancelled"),
            ("g[1]", "cancelled"),
        ]
        assert traced.by_name("g").metadata["branches_cancelled"] == 2
        assert traced.collector.open_span_count() == 0

    def test_nested_group_in_a_task(self, traced: Traced) -> None:
        """A group inside a task's span: its parallel span is a child of that task's spawn span."""

        async def leaf() -> None:
            with span(SpanKind.FN_CALL, "leaf"):
                await asyncio.sleep(0)

        async def inner() -> None:
            async with TracedTaskGroup(name="inner") as group:
                group.create_task(leaf())

        async def main() -> None:
            async with TracedTaskGroup(name="outer") as group:
                group.create_task(inner())

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 parallel outer 0ms branches=1 status=ok
            #2 spawn outer[0] 0ms status=ok -> #1{relation=branch_of,index=0}
              #3 parallel inner 0ms branches=1 status=ok
            #4 spawn inner[0] 0ms status=ok -> #3{relation=branch_of,index=0}
              #5 fn_call leaf 0ms
        """)

    def test_context_argument_is_used(self, traced: Traced) -> None:
        """create_task(context=...) runs the task in that context, still under its span."""
        var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")

        async def read() -> str:
            with span(SpanKind.FN_CALL, "read"):
                return var.get()

        async def main() -> str:
            context = contextvars.copy_context()
            context.run(var.set, "given")
            async with TracedTaskGroup() as group:
                task = group.create_task(read(), context=context)
            return task.result()

        assert traced.run(main) == "given"
        assert traced.by_name("read").parent_id == traced.by_name("task_group[0]").span_id

    def test_disabled_tracing_records_nothing(self, traced: Traced) -> None:
        """With tracing off it is a plain TaskGroup: results and no spans."""
        traced.collector.enabled = False

        async def main() -> int:
            async with TracedTaskGroup() as group:
                task = group.create_task(asyncio.sleep(0, 7))
            return task.result()

        assert traced.run(main) == 7
        assert traced.collector.spans() == []

    def test_not_wrapped_twice_under_instrument_asyncio(self, traced: Traced) -> None:
        """With instrument_asyncio on, the trace is the same: one spawn span per task."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                async with TracedTaskGroup() as group:
                    group.create_task(asyncio.sleep(0))
                    group.create_task(asyncio.sleep(0))

        traced.run(main)
        plain = traced.outline()
        traced.collector.take_spans()
        traced.collector.reset()
        with instrument_asyncio():
            traced.run(main)
        assert traced.outline() == plain
        assert plain.count("spawn") == 2


class TestInterleaving:
    def test_many_groups_in_concurrent_tasks(self, traced: Traced) -> None:
        """Three groups of twenty tasks, interleaved at random: no span under a wrong parent."""
        rng = random.Random(7)
        delays = {(g, i): rng.randint(0, 3) for g in range(3) for i in range(20)}

        async def child(g: int, i: int) -> None:
            with span(SpanKind.FN_CALL, f"work {g}.{i}"):
                for _ in range(delays[g, i]):
                    await asyncio.sleep(0)
                with span(SpanKind.FN_CALL, f"inner {g}.{i}"):
                    await asyncio.sleep(0)

        async def request(g: int) -> None:
            with span(SpanKind.PIPELINE, f"request {g}"):
                async with TracedTaskGroup(name=f"group {g}") as group:
                    for i in range(20):
                        group.create_task(child(g, i), name=f"task {g}.{i}")

        async def main() -> None:
            await asyncio.gather(*(request(g) for g in range(3)))

        traced.run(main)
        by_id = {s.span_id: s for s in traced.collector.spans()}
        by_name = {s.name: s for s in by_id.values()}
        for (g, i), _ in delays.items():
            task_span = by_name[f"task {g}.{i}"]
            assert task_span.parent_id is None
            assert task_span.links[0].span_id == str(by_name[f"group {g}"].span_id)
            assert task_span.links[0].attributes == {"relation": "branch_of", "index": str(i)}
            assert by_name[f"work {g}.{i}"].parent_id == task_span.span_id
            assert by_name[f"inner {g}.{i}"].parent_id == by_name[f"work {g}.{i}"].span_id
        for g in range(3):
            assert by_name[f"group {g}"].parent_id == by_name[f"request {g}"].span_id
        assert traced.collector.open_span_count() == 0

    def test_child_timeout_inside_group(self, traced: Traced) -> None:
        """A child that times out on its own fails the group; the timeout is its error."""

        async def slow() -> None:
            async with asyncio.timeout(0.001):
                await asyncio.sleep(10)

        async def main() -> None:
            with pytest.raises(ExceptionGroup) as info:
                async with TracedTaskGroup(name="g") as group:
                    group.create_task(slow(), name="slow")
            assert info.group_contains(TimeoutError)

        traced.run(main)
        assert traced.by_name("slow").metadata["status"] == "error"
        assert traced.by_name("slow").metadata["error_type"] == "TimeoutError"


def test_group_span_belongs_to_the_collector_it_was_entered_with() -> None:
    """A group entered under one collector keeps using it for tasks created later."""
    first, second = SpanCollector(), SpanCollector()

    async def main() -> None:
        with use_collector(first):
            group = TracedTaskGroup()
            await group.__aenter__()
        with use_collector(second):
            group.create_task(asyncio.sleep(0))
        await group.__aexit__(None, None, None)

    asyncio.run(main())
    assert [s.kind for s in first.spans()] == [SpanKind.SPAWN, SpanKind.PARALLEL]
    assert second.spans() == []
