"""span(...) as a context manager and decorator, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    SpanLink,
    install_override,
    set_tracing_enabled,
    span,
    use_collector,
)


@pytest.fixture
def collector() -> Iterator[SpanCollector]:
    """A fresh enabled collector bound for the test."""
    c = SpanCollector()
    with use_collector(c):
        yield c


class TestContextManager:
    def test_nested_blocks(self, collector: SpanCollector) -> None:
        """Nested with-blocks nest spans and carry metadata and events."""
        with span(SpanKind.PIPELINE, "main", source="test") as outer:
            with span("step", "load") as inner:
                inner.set_metadata("rows", 3)
                assert inner.record_event("checkpoint", at=1)
            assert inner.link() is None  # ended
            assert outer.link() is not None
        by_name = {s.name: s for s in collector.spans()}
        assert by_name["load"].parent_id == outer.span_id
        assert by_name["load"].metadata == {"rows": 3}
        assert by_name["load"].events[0].attributes == {"at": 1}
        assert by_name["main"].metadata == {"source": "test"}

    def test_exception_recorded_and_span_ended(self, collector: SpanCollector) -> None:
        """An exception sets error/error_type, ends the span and propagates."""
        with pytest.raises(ValueError, match="boom"), span("step", "fails"):
            raise ValueError("boom")
        (only,) = collector.spans()
        assert only.metadata == {"error": "boom", "error_type": "ValueError"}
        assert collector.open_span_count() == 0

    def test_cancellation_recorded(self, collector: SpanCollector) -> None:
        """Cancellation sets cancelled=True without an error key."""

        async def main() -> None:
            async def victim() -> None:
                async with span("step", "victim"):
                    await asyncio.sleep(3600)

            task = asyncio.create_task(victim())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        (only,) = collector.spans()
        assert only.metadata == {"cancelled": True}

    def test_disabled_runs_code_records_nothing(self) -> None:
        """With tracing off, the block runs and the handle is inert."""
        set_tracing_enabled(False)
        ran = []
        with span("step", "x") as handle:
            ran.append(handle.span_id)
            handle.set_metadata("k", 1)
            assert handle.record_event("e") is False
            assert handle.link() is None
        assert ran == [0]

    def test_same_object_reentered(self, collector: SpanCollector) -> None:
        """One span object entered twice (nested) makes two spans and ends both."""
        scope = span("step", "again")
        with scope as first, scope as second:
            assert first.span_id != second.span_id
        assert collector.open_span_count() == 0
        assert len(collector.spans()) == 2


class TestDecorator:
    def test_sync_function(self, collector: SpanCollector) -> None:
        """A decorated function keeps its name and gets a span per call."""

        @span("fn_call", "add")
        def add(a: int, b: int) -> int:
            return a + b

        assert add.__name__ == "add"
        assert add(1, 2) == 3
        assert add(3, 4) == 7
        assert [s.name for s in collector.spans()] == ["add", "add"]

    def test_async_function_timed_by_mock(self, collector: SpanCollector) -> None:
        """An async function stays a coroutine function and its span is timed exactly."""
        clock = MockClock()

        @span("step", "wait")
        async def wait() -> str:
            await asyncio.sleep(0)
            clock.advance(0.25)
            return "done"

        import inspect

        assert inspect.iscoroutinefunction(wait)
        with install_override(clock):
            assert asyncio.run(wait()) == "done"
        assert collector.spans()[0].duration_ms == 250

    def test_decorated_error(self, collector: SpanCollector) -> None:
        """A raising decorated function records the error and re-raises."""

        @span("step", "bad")
        def bad() -> None:
            raise KeyError("k")

        with pytest.raises(KeyError):
            bad()
        assert collector.spans()[0].metadata["error_type"] == "KeyError"

    def test_concurrent_calls_parent_to_their_callers(self, collector: SpanCollector) -> None:
        """Concurrent calls of one decorated coroutine each nest under their own caller."""

        @span("fn_call", "leaf")
        async def leaf() -> None:
            for _ in range(3):
                await asyncio.sleep(0)

        async def caller(i: int) -> int:
            async with span("step", f"caller{i}") as h:
                await leaf()
                return h.span_id

        async def main() -> list[int]:
            return await asyncio.gather(*(caller(i) for i in range(50)))

        caller_ids = asyncio.run(main())
        leaves = sorted(s.parent_id for s in collector.spans() if s.name == "leaf")  # type: ignore[type-var]  # every leaf has a parent
        assert leaves == sorted(caller_ids)


def test_bad_arguments() -> None:
    """span() validates kind and name up front."""
    with pytest.raises(TypeError, match="kind"):
        span("nope", "x")
    with pytest.raises(TypeError, match="name"):
        span("step", 3)  # type: ignore[arg-type]  # runtime guard


class TestRoundTwoOptions:
    def test_links_are_links_not_metadata(self, collector: SpanCollector) -> None:
        """span(links=[...]) records links; they never become a metadata value."""
        link = SpanLink("trace_other", "7", {"relation": "consumed"})
        with span("step", "b", links=[link]):
            pass
        (done,) = collector.spans()
        assert done.links == [link]
        assert done.metadata == {}

    def test_detached_has_no_parent_but_children_nest(self, collector: SpanCollector) -> None:
        """detached=True opens a root that is still pushed."""
        with span("pipeline", "outer"):
            with span("resume", "later", detached=True) as later:
                with span("step", "child"):
                    pass
        by = {s.name: s for s in collector.spans()}
        assert by["later"].parent_id is None
        assert by["child"].parent_id == later.span_id

    def test_new_trace_roots_a_fresh_trace(self, collector: SpanCollector) -> None:
        """new_trace=True: a root whose trace id the spans under it carry."""
        with span("pipeline", "service"):
            with span("step", "request", new_trace=True):
                with span("fn_call", "handler"):
                    pass
        by = {s.name: s for s in collector.spans()}
        assert by["request"].parent_id is None
        assert by["request"].trace_id == by["handler"].trace_id != by["service"].trace_id

    def test_unknown_kind_lists_the_valid_kinds(self) -> None:
        """An unknown kind is a TypeError that lists every valid kind."""
        with pytest.raises(TypeError) as info:
            span("stepp", "x")
        for kind in SpanKind:
            assert kind.value in str(info.value)

    def test_bad_links_are_rejected_up_front(self) -> None:
        """links must be SpanLink values, checked when the span() is made."""
        with pytest.raises(TypeError, match="links must be a list of SpanLink"):
            span("step", "x", links=["trace:1"])  # type: ignore[list-item]  # runtime guard


class TestSharedObject:
    @pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
    def test_two_overlapping_tasks_get_independent_spans(self, loop_name: str) -> None:
        """One span object entered by two overlapping tasks: each task's span is its own."""
        clock = MockClock()
        shared = span("step", "shared")
        c = SpanCollector()

        async def first() -> None:
            # Enters at 0, leaves at 20 ms with an error.
            with shared:
                await asyncio.sleep(0.02)
                raise ValueError("first failed")

        async def second() -> None:
            # Enters at 10 ms, leaves at 50 ms cleanly (after `first` left).
            await asyncio.sleep(0.01)
            async with shared:
                await asyncio.sleep(0.04)

        async def main() -> None:
            with use_collector(c):
                await asyncio.gather(first(), second(), return_exceptions=True)

        from harn_async_trace.loop import run

        with install_override(clock):
            run(main(), clock=clock, use_uvloop=loop_name == "uvloop")
        got = sorted((s.start_ms, s.duration_ms, s.metadata.get("error")) for s in c.spans())
        assert got == [(0, 20, "first failed"), (10, 40, None)]

    def test_nested_reentry_in_one_task(self, collector: SpanCollector) -> None:
        """Nested entries of one object in one task end innermost first."""
        shared = span("step", "again")
        with shared as outer, shared as inner:
            pass
        by_id = {s.span_id: s for s in collector.spans()}
        assert by_id[inner.span_id].parent_id == outer.span_id
        assert [s.span_id for s in collector.spans()] == [inner.span_id, outer.span_id]
