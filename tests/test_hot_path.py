"""Hot-path choices keep behaviour: lazy chain pops, lazy metadata, bounded memory, span() reuse."""

from __future__ import annotations

import asyncio
import gc
import random

import pytest
from boundaries_support import run_on

from harn_async_trace import (
    Span,
    SpanCollector,
    SpanKind,
    current_collector,
    current_span_id,
    set_tracing_enabled,
    span,
    span_end,
    span_set_metadata,
    span_start,
    use_collector,
)
from harn_async_trace.context import default_collector

LOOPS = ["asyncio", "uvloop"]


def _ended(c: SpanCollector, span_id: int) -> Span:
    """End ``span_id`` and return its record (it must have been open)."""
    record = c.end(span_id)
    assert record is not None
    return record


def chain_length(c: SpanCollector) -> int:
    """How many spans the current context's chain links through (ended ones included)."""
    return c._chain_length()


class TestLazyChainPop:
    def test_out_of_order_ends_keep_parents(self) -> None:
        """Ending spans out of order never changes who the next span's parent is."""
        c = SpanCollector()
        a = c.start(SpanKind.STEP, "a")
        b = c.start(SpanKind.STEP, "b")
        c.end(b)
        assert c.current_span_id() == a
        d = c.start(SpanKind.STEP, "d")
        c.end(a)  # the parent ends while its child is open
        assert c.current_span_id() == d
        c.end(d)
        assert c.current_span_id() is None
        e = c.start(SpanKind.STEP, "e")
        parents = {s.span_id: s.parent_id for s in c.spans()}
        assert (parents[b], parents[d]) == (a, a)
        assert _ended(c, e).parent_id is None

    def test_siblings_do_not_grow_the_chain(self) -> None:
        """10k sibling spans leave a chain of at most the parent plus one ended span."""
        c = SpanCollector()
        parent = c.start(SpanKind.PIPELINE, "p")
        for _ in range(10_000):
            c.end(c.start(SpanKind.FN_CALL, "leaf"))
        assert chain_length(c) <= 2
        assert c.current_span_id() == parent

    def test_deep_unwind_then_start_is_a_root(self) -> None:
        """After 1,000 nested spans all end, the next span is a root and the chain is short."""
        c = SpanCollector()
        ids = [c.start(SpanKind.FN_CALL, f"d{i}") for i in range(1_000)]
        for span_id in reversed(ids):
            c.end(span_id)
        fresh = c.start(SpanKind.STEP, "fresh")
        assert _ended(c, fresh).parent_id is None
        assert chain_length(c) == 1

    def test_reset_abandons_open_spans_in_chains(self) -> None:
        """After reset, spans left open in this context are skipped, not parents."""
        c = SpanCollector()
        old = c.start(SpanKind.STEP, "old")
        c.reset()
        assert c.end(old) is None
        new = c.start(SpanKind.STEP, "new")
        assert _ended(c, new).parent_id is None

    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_interleaved_tasks_with_cross_task_ends(self, loop_name: str) -> None:
        """200 tasks nest spans, some ended by other tasks mid-way; every parent stays right."""
        c = SpanCollector()
        expected: dict[int, int | None] = {}
        open_ids: set[int] = set()
        handoff: list[int] = []  # spans their starter left for another task to end

        def end(span_id: int) -> None:
            assert c.end(span_id) is not None
            open_ids.remove(span_id)

        async def worker(n: int, root: int) -> None:
            rng = random.Random(n)
            mine = [root]
            for depth in range(rng.randint(3, 8)):
                # Seed semantics: the parent is the innermost span of this task still open.
                parent = next(s for s in reversed(mine) if s in open_ids)
                span_id = c.start(SpanKind.FN_CALL, f"{n}.{depth}")
                expected[span_id] = parent
                open_ids.add(span_id)
                mine.append(span_id)
                await asyncio.sleep(0)
                if rng.random() < 0.3 and handoff:
                    end(handoff.pop())  # a span of some other task
                candidates = [s for s in mine[1:] if s in open_ids and s not in handoff]
                if candidates and rng.random() < 0.4:
                    victim = rng.choice(candidates)  # not necessarily the innermost
                    if rng.random() < 0.5:
                        handoff.append(victim)
                    else:
                        end(victim)
                await asyncio.sleep(0)
            for span_id in reversed(mine[1:]):
                if span_id in open_ids and span_id not in handoff:
                    end(span_id)

        async def main() -> None:
            root = c.start(SpanKind.PIPELINE, "main")
            expected[root] = None
            open_ids.add(root)
            await asyncio.gather(*(worker(n, root) for n in range(200)))
            while handoff:
                end(handoff.pop())
            end(root)

        run_on(loop_name, main)
        got = {s.span_id: s.parent_id for s in c.spans()}
        assert got == expected
        assert c.open_span_count() == 0


class TestLazyMetadata:
    def test_span_without_metadata_reads_one_stable_dict(self) -> None:
        """A span that never got metadata reads as {} and keeps returning that same dict."""
        c = SpanCollector()
        record = c.end(c.start(SpanKind.STEP, "a"))
        assert record is not None
        assert record.metadata == {}
        assert record.metadata is record.metadata

    def test_equal_to_constructed_span(self) -> None:
        """A collected span with no metadata equals the same Span built by hand."""
        c = SpanCollector()
        record = c.end(c.start(SpanKind.STEP, "a"))
        assert record is not None
        built = Span(
            trace_id=record.trace_id, span_id=record.span_id, parent_id=None,
            kind=SpanKind.STEP, name="a", start_ms=record.start_ms,
            start_unix_ms=record.start_unix_ms, duration_ms=record.duration_ms,
            metadata={}, start_ns=record.start_ns, duration_ns=record.duration_ns,
        )
        assert built == record
        assert "metadata={}" in repr(record)

    def test_late_attach_and_limits_on_empty_spans(self) -> None:
        """Late attach works on a span with no metadata; a zero limit drops the first key."""
        c = SpanCollector(max_metadata_per_span=0)
        s = c.start(SpanKind.STEP, "a")
        c.set_metadata(s, "k", 1)
        record = c.end(s)
        assert record is not None
        assert (record.metadata, c.dropped_metadata) == ({}, 1)
        c2 = SpanCollector()
        s2 = c2.start(SpanKind.STEP, "b")
        c2.end(s2)
        c2.attach_metadata_if_absent(s2, "late", True)
        assert c2.spans()[0].metadata == {"late": True}


class TestBoundedMemory:
    def test_dropped_spans_are_freed(self) -> None:
        """Past max_spans, dropped spans are not kept alive by the collector or the chain."""
        c = SpanCollector(max_spans=10)
        gc.collect()
        before = sum(1 for o in gc.get_objects() if type(o) is Span)
        parent = c.start(SpanKind.PIPELINE, "p")
        for _ in range(5_000):
            inner = c.start(SpanKind.FN_CALL, "leaf")
            c.set_metadata(inner, "k", 1)
            c.end(c.start(SpanKind.STEP, "leaf-child"))
            c.end(inner)
        c.end(parent)
        gc.collect()
        alive = sum(1 for o in gc.get_objects() if type(o) is Span) - before
        assert c.dropped_spans == 2 * 5_000 + 1 - 10
        assert alive <= 10 + 3  # the kept ones, plus at most the chain's last few


class TestModuleApiLookup:
    def test_current_collector_follows_use_collector(self) -> None:
        """The module API acts on the collector bound by use_collector, else the default."""
        assert current_collector() is default_collector()
        mine = SpanCollector()
        with use_collector(mine):
            assert current_collector() is mine
            outer = span_start(SpanKind.STEP, "outer")
            span_set_metadata(outer, "k", 1)
            assert current_span_id() == outer
            assert span_end(outer) is not None
        assert current_collector() is default_collector()
        assert [s.metadata for s in mine.spans()] == [{"k": 1}]
        assert default_collector().spans() == []

    def test_disabled_records_nothing(self) -> None:
        """With tracing off, span_start gives 0 and nothing is opened or kept."""
        set_tracing_enabled(False)
        assert span_start("step", "x") == 0
        assert span_end(0) is None
        assert default_collector().open_span_count() == 0


class TestSpanObjectReuse:
    def test_reentered_three_deep_and_reused(self) -> None:
        """One span() object nests three deep, unwinds in order, then works again."""
        c = SpanCollector()
        scope = span("step", "again")
        with use_collector(c):
            with scope as a, scope as b, scope as d:
                assert c.current_span_id() == d.span_id
            with scope as e:
                pass
        parents = {s.span_id: s.parent_id for s in c.spans()}
        assert parents == {d.span_id: b.span_id, b.span_id: a.span_id, a.span_id: None,
                           e.span_id: None}
        assert c.open_span_count() == 0

    def test_string_kind_and_bad_kind(self) -> None:
        """span() takes a kind's string value and rejects unknown or unhashable kinds clearly."""
        assert span("fn_call", "f").kind is SpanKind.FN_CALL
        with pytest.raises(TypeError, match="kind"):
            span(["step"], "f")  # type: ignore[arg-type]  # the wrong type is the point
        with pytest.raises(TypeError, match="kind"):
            SpanCollector().start(["step"], "f")  # type: ignore[arg-type]  # the wrong type is the point
