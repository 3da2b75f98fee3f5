"""Module-level API over the current collector, and use_collector routing."""

from __future__ import annotations

import asyncio

import pytest

from harn_async_trace import (
    SpanCollector,
    SpanKind,
    current_collector,
    current_span_id,
    current_span_link,
    default_collector,
    is_tracing_enabled,
    peek_spans,
    reset_tracing,
    set_tracing_enabled,
    span_attach_metadata,
    span_attach_metadata_if_absent,
    span_close,
    span_end,
    span_link,
    span_record_event,
    span_set_metadata,
    span_start,
    take_spans,
    use_collector,
)


def test_enabled_flow() -> None:
    """With tracing on, the module functions drive the default collector."""
    set_tracing_enabled(True)
    assert is_tracing_enabled()
    outer = span_start(SpanKind.PIPELINE, "p")
    assert current_span_id() == outer
    link = current_span_link()
    assert link is not None
    assert link.span_id == str(outer)
    assert span_link(outer) == link
    assert span_record_event(outer, "e", {"a": 1})
    span_set_metadata(outer, "k", "v")
    span_attach_metadata(outer, "k", "v2")  # open span: set
    assert span_end(outer) is not None
    span_attach_metadata(outer, "k", "v3")  # ended: left alone (seed 0.9.4)
    span_attach_metadata(outer, "late", 1)
    span_attach_metadata_if_absent(outer, "late", 2)  # reaches completed spans
    (span,) = peek_spans()
    assert span.metadata == {"k": "v2", "late": 2}
    assert take_spans() == [span]
    assert peek_spans() == []


def test_disabled_reads_return_none() -> None:
    """current_span_id and span_link return None while tracing is off."""
    set_tracing_enabled(True)
    s = span_start(SpanKind.STEP, "a")
    set_tracing_enabled(False)
    assert current_span_id() is None
    assert span_link(s) is None
    assert current_span_link() is None


def test_reset_tracing() -> None:
    """reset_tracing clears spans and restarts ids."""
    set_tracing_enabled(True)
    span_end(span_start(SpanKind.STEP, "a"))
    reset_tracing()
    assert peek_spans() == []
    assert span_start(SpanKind.STEP, "b") == 1


def test_set_tracing_enabled_rejects_non_bool() -> None:
    """A non-bool flag is a TypeError, not a silent truthiness test."""
    with pytest.raises(TypeError, match="enabled must be a bool"):
        set_tracing_enabled(1)  # type: ignore[arg-type]  # runtime guard


def test_use_collector_routes_and_restores() -> None:
    """use_collector scopes the module API to another collector, then restores it."""
    mine = SpanCollector()
    with use_collector(mine):
        assert current_collector() is mine
        span_end(span_start(SpanKind.STEP, "mine"))
    assert current_collector() is default_collector()
    assert [s.name for s in mine.spans()] == ["mine"]
    assert peek_spans() == []
    with pytest.raises(TypeError, match="SpanCollector"):
        with use_collector("nope"):  # type: ignore[arg-type]  # runtime guard
            pass


def test_use_collector_is_per_task() -> None:
    """Tasks bound to different collectors record into their own only."""
    first, second = SpanCollector(), SpanCollector()

    async def work(collector: SpanCollector, name: str) -> None:
        with use_collector(collector):
            for _ in range(20):
                s = span_start(SpanKind.STEP, name)
                await asyncio.sleep(0)
                span_end(s)

    async def main() -> None:
        await asyncio.gather(work(first, "a"), work(second, "b"))

    asyncio.run(main())
    assert {s.name for s in first.spans()} == {"a"}
    assert {s.name for s in second.spans()} == {"b"}
    assert len(first.spans()) == len(second.spans()) == 20


def test_chains_of_two_collectors_are_independent() -> None:
    """A span of one collector never becomes the parent in another."""
    first, second = SpanCollector(), SpanCollector()
    a = first.start(SpanKind.PIPELINE, "a")
    b = second.start(SpanKind.STEP, "b")
    assert second.end(b).parent_id is None  # type: ignore[union-attr]  # the span was open
    assert first.end(a) is not None


def test_span_close_is_the_cheap_end() -> None:
    """span_close ends a span without returning its record; False for 0 and closed ids."""
    set_tracing_enabled(True)
    span_id = span_start(SpanKind.STEP, "a")
    assert span_close(span_id) is True
    assert span_close(span_id) is False
    assert span_close(0) is False
    assert [s.name for s in peek_spans()] == ["a"]


def test_attach_metadata_leaves_an_ended_span_alone() -> None:
    """span_attach_metadata on an ended span is a no-op (seed 0.9.4)."""
    set_tracing_enabled(True)
    span_id = span_start(SpanKind.STEP, "a")
    span_end(span_id)
    span_attach_metadata(span_id, "late", 1)
    assert peek_spans()[0].metadata == {}


def test_run_is_importable_from_the_package_root() -> None:
    """`from harn_async_trace import run` is the virtual-loop entry point."""
    import harn_async_trace
    from harn_async_trace.loop import run as loop_run

    assert harn_async_trace.run is loop_run
