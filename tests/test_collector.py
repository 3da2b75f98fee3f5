"""SpanCollector: chains across asyncio tasks, late ends, limits and bad input."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable

import pytest
from boundaries_support import run_on

from harn_async_trace import MockClock, Span, SpanCollector, SpanKind, SpanLink, install_override

LOOPS = ["asyncio", "uvloop"]


class TestTaskChains:
    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_500_interleaved_tasks_never_misparent(self, loop_name: str) -> None:
        """Each task's nested spans parent to that task's own spans, never a sibling's."""
        c = SpanCollector()
        owner: dict[int, int] = {}
        expected_parent: dict[int, int | None] = {}

        async def worker(task_no: int, root: int) -> None:
            rng = random.Random(task_no)
            parent: int | None = root
            opened: list[int] = []
            for depth in range(rng.randint(2, 5)):
                span_id = c.start(SpanKind.FN_CALL, f"t{task_no}.{depth}")
                owner[span_id] = task_no
                expected_parent[span_id] = parent
                opened.append(span_id)
                parent = span_id
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
            for span_id in reversed(opened):
                await asyncio.sleep(0)
                c.end(span_id)

        async def main() -> None:
            root = c.start(SpanKind.PIPELINE, "main")
            await asyncio.gather(*(worker(i, root) for i in range(500)))
            c.end(root)

        run_on(loop_name, main)
        spans = {s.span_id: s for s in c.spans()}
        assert c.open_span_count() == 0
        assert len(spans) == len(owner) + 1
        misparented = [i for i, p in expected_parent.items() if spans[i].parent_id != p]
        assert misparented == []

    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_child_task_sees_snapshot_of_creator_chain(self, loop_name: str) -> None:
        """A task created inside a span parents to it; the creator's later spans don't leak in."""
        c = SpanCollector()

        async def child() -> int:
            await asyncio.sleep(0)
            span_id = c.start(SpanKind.STEP, "in-child")
            await asyncio.sleep(0)
            c.end(span_id)
            return span_id

        async def main() -> tuple[int, int, int]:
            outer = c.start(SpanKind.PIPELINE, "main")
            task = asyncio.create_task(child())
            later = c.start(SpanKind.STEP, "creator-later")  # opened after the task was created
            child_id = await task
            c.end(later)
            c.end(outer)
            return outer, later, child_id

        outer, later, child_id = run_on(loop_name, main)
        spans = {s.span_id: s for s in c.spans()}
        assert spans[child_id].parent_id == outer
        assert spans[later].parent_id == outer

    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_span_ended_from_another_task(self, loop_name: str) -> None:
        """A span ended by a different task is skipped when its starter's chain is read."""
        c = SpanCollector()

        async def main() -> tuple[int, int, int]:
            outer = c.start(SpanKind.PIPELINE, "main")
            middle = c.start(SpanKind.STEP, "ended-elsewhere")

            async def closer() -> None:
                assert c.end(middle) is not None

            await asyncio.create_task(closer())
            after = c.start(SpanKind.STEP, "after")
            assert c.current_span_id() == after
            c.end(after)
            assert c.current_span_id() == outer
            c.end(outer)
            return outer, middle, after

        outer, middle, after = run_on(loop_name, main)
        spans = {s.span_id: s for s in c.spans()}
        assert spans[after].parent_id == outer
        assert spans[middle].parent_id == outer
        assert c.open_span_count() == 0

    def test_spans_from_threads_get_unique_ids(self) -> None:
        """Threads starting spans at once never share or lose an id."""
        c = SpanCollector()

        def work() -> None:
            for _ in range(2_000):
                c.end(c.start(SpanKind.STEP, "t"))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = [s.span_id for s in c.spans()]
        assert sorted(ids) == list(range(1, 16_001))


class TestTimes:
    def test_times_come_from_the_mock(self) -> None:
        """Under a mock, start/duration are the mock's monotonic time exactly."""
        clock = MockClock(start_wall_ms=5_000)
        with install_override(clock):
            c = SpanCollector()
            clock.advance(2)
            outer = c.start(SpanKind.PIPELINE, "p")
            clock.advance(0.0015)
            span = c.end(outer)
        assert span is not None
        assert (span.start_ms, span.start_ns, span.duration_ns, span.duration_ms) == (
            2_000, 2_000_000_000, 1_500_000, 1,
        )  # fmt: skip
        assert span.start_unix_ms == 7_000

    def test_trace_id_deterministic_under_mock(self) -> None:
        """Two collectors made under equal fresh mocks have equal uuid7 trace ids."""
        ids = []
        for _ in range(2):
            with install_override(MockClock()):
                ids.append(SpanCollector().trace_id)
        assert ids[0] == ids[1]
        assert ids[0].startswith("trace_")
        assert ids[0][6:].count("-") == 4
        assert ids[0][6 + 14] == "7"

    def test_span_keeps_its_start_clock(self) -> None:
        """A span started under a mock ends on that mock even after it is uninstalled."""
        clock = MockClock()
        guard = install_override(clock)
        c = SpanCollector()
        s = c.start(SpanKind.STEP, "a")
        clock.advance(3)
        guard.restore()
        assert c.end(s).duration_ms == 3_000  # type: ignore[union-attr]  # the span was open

    def test_system_clock_start_is_offset_from_epoch(self) -> None:
        """With the real clock, start_ms counts from the collector's epoch."""
        c = SpanCollector()
        span = c.end(c.start(SpanKind.STEP, "a"))
        assert span is not None
        assert 0 <= span.start_ms < 60_000
        assert span.start_unix_ms > 1_600_000_000_000


class TestBadInput:
    def test_unknown_zero_and_closed_ids(self) -> None:
        """Unknown, zero and ended ids are no-ops with the documented results."""
        c = SpanCollector()
        s = c.start(SpanKind.STEP, "a")
        c.end(s)
        for bad in (0, s, 999):
            assert c.end(bad) is None
            assert c.record_event(bad, "e") is False
            assert c.span_link(bad) is None
            c.set_metadata(bad, "k", 1)
        c.attach_metadata_if_absent(999, "k", 1)
        assert [x.metadata for x in c.spans()] == [{}]

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda c: c.start(SpanKind.STEP, 5), "name must be a str"),
            (lambda c: c.start_with_links(SpanKind.STEP, "a", ["x"]), r"links\[0\] must be"),
            (lambda c: c.start_with_links(SpanKind.STEP, "a", "x"), "links must be a list"),
            (lambda c: c.set_metadata(c.start("step", "a"), 3, 1), "metadata key must be a str"),
            (lambda c: c.record_event(c.start("step", "a"), 3), "event name must be a str"),
            (lambda c: SpanCollector(max_spans=-1), "max_spans must be"),
        ],
    )
    def test_wrong_types_raise_type_error(
        self, call: Callable[[SpanCollector], object], message: str
    ) -> None:
        """Wrong argument types raise TypeError naming the argument."""
        with pytest.raises(TypeError, match=message):
            call(SpanCollector())

    def test_bad_input_does_not_corrupt_state(self) -> None:
        """A rejected call leaves already-recorded and open spans intact."""
        c = SpanCollector()
        outer = c.start(SpanKind.PIPELINE, "p")
        c.end(c.start(SpanKind.STEP, "done"))
        with pytest.raises(TypeError):
            c.start(SpanKind.STEP, None)  # type: ignore[arg-type]  # runtime guard
        assert c.current_span_id() == outer
        assert c.end(c.start(SpanKind.STEP, "next")).span_id == 3  # type: ignore[union-attr]  # the span was open
        assert [s.name for s in c.spans()] == ["done", "next"]

    def test_string_kinds_accepted(self) -> None:
        """A kind's string value works wherever a SpanKind does."""
        c = SpanCollector()
        assert c.end(c.start("llm_call", "x")).kind is SpanKind.LLM_CALL  # type: ignore[union-attr]  # the span was open


class TestLimits:
    def test_overflow_counts_dropped_spans_and_never_raises(self) -> None:
        """Past max_spans, finished spans are dropped and counted; take_spans frees room."""
        c = SpanCollector(max_spans=3)
        for i in range(5):
            c.end(c.start(SpanKind.STEP, str(i)))
        assert [s.name for s in c.spans()] == ["0", "1", "2"]
        assert c.dropped_spans == 2
        assert len(c.take_spans()) == 3
        c.end(c.start(SpanKind.STEP, "after"))
        assert [s.name for s in c.spans()] == ["after"]

    def test_open_spans_do_not_count(self) -> None:
        """Open spans don't use max_spans room."""
        c = SpanCollector(max_spans=1)
        opened = [c.start(SpanKind.STEP, str(i)) for i in range(10)]
        assert c.open_span_count() == 10
        for span_id in opened:
            c.end(span_id)
        assert c.dropped_spans == 9

    def test_event_link_metadata_limits(self) -> None:
        """Events, links and metadata keys past their limits are dropped and counted."""
        c = SpanCollector(max_events_per_span=2, max_links_per_span=1, max_metadata_per_span=2)
        s = c.start_with_links(SpanKind.STEP, "a", [SpanLink("t", "1"), SpanLink("t", "2")])
        for i in range(4):
            c.record_event(s, f"e{i}")
            c.set_metadata(s, f"k{i}", i)
        c.set_metadata(s, "k0", "overwrite is fine")
        span = c.end(s)
        assert span is not None
        assert [e.name for e in span.events] == ["e0", "e1"]
        assert span.links == [SpanLink("t", "1")]
        assert span.metadata == {"k0": "overwrite is fine", "k1": 1}
        assert (c.dropped_events, c.dropped_links, c.dropped_metadata) == (2, 1, 2)

    def test_reset_abandons_open_spans(self) -> None:
        """After reset, stale open spans are neither parents nor endable."""
        c = SpanCollector()
        old = c.start(SpanKind.PIPELINE, "old")
        old_trace = c.trace_id
        c.reset()
        assert c.trace_id != old_trace
        fresh = c.start(SpanKind.STEP, "new")
        # The abandoned id is never handed out again, so it cannot name `fresh`.
        assert fresh == old + 1
        assert c.end(old) is None
        c.set_metadata(old, "stale", True)
        assert c.end(fresh).parent_id is None  # type: ignore[union-attr]  # the span was open
        assert c.spans()[0].metadata == {}

    def test_reset_with_nothing_open_restarts_ids(self) -> None:
        """With no span left open, a reset restarts ids at 1 (seed)."""
        c = SpanCollector()
        c.end(c.start(SpanKind.STEP, "a"))
        c.reset()
        assert c.start(SpanKind.STEP, "b") == 1


class TestSpanRecord:
    def test_finished_span_is_read_only(self) -> None:
        """Fields of a finished span cannot be reassigned."""
        c = SpanCollector()
        span = c.end(c.start(SpanKind.STEP, "a"))
        assert isinstance(span, Span)
        with pytest.raises(AttributeError, match="Span is read-only"):
            span.name = "b"
        with pytest.raises(AttributeError, match="Span is read-only"):
            del span.start_ns
        with pytest.raises(AttributeError):
            span.__dict__  # noqa: B018 - slotted: no instance dict

    def test_end_returns_a_record_equal_to_the_stored_one(self) -> None:
        """end() returns a record equal to what spans() reads, sharing its metadata dict."""
        c = SpanCollector()
        s = c.start(SpanKind.STEP, "a")
        c.set_metadata(s, "k", 1)
        span = c.end(s)
        assert span is not None
        assert c.spans() == [span]
        c.attach_metadata_if_absent(s, "late", True)
        assert span.metadata == c.spans()[0].metadata == {"k": 1, "late": True}


class TestAdoptTrace:
    def test_adopt_trace_sets_id_and_counter(self) -> None:
        """adopt_trace makes new spans carry the given trace id and id sequence."""
        c = SpanCollector()
        first = c.end(c.start(SpanKind.STEP, "before"))
        c.adopt_trace("trace_remote", 500)
        span = c.end(c.start(SpanKind.STEP, "after"))
        assert span is not None
        assert (span.trace_id, span.span_id) == ("trace_remote", 500)
        assert first is not None
        assert first.span_id == 1

    @pytest.mark.parametrize(
        ("args", "error"),
        [(("", 1), TypeError), (("t", 0), ValueError), (("t", "1"), TypeError)],
    )
    def test_adopt_trace_rejects_bad_input(self, args: tuple[object, object], error: type) -> None:
        """Bad trace ids or first ids are rejected with a clear error."""
        with pytest.raises(error):
            SpanCollector().adopt_trace(*args)  # type: ignore[arg-type]  # runtime guard

    def test_start_unix_ns_is_exact(self) -> None:
        """start_unix_ns keeps the sub-ms wall start that start_unix_ms floors."""
        clock = MockClock(start_wall_ms=1_000)
        with install_override(clock):
            c = SpanCollector()
            clock.advance(0.0000015)
            span = c.end(c.start(SpanKind.STEP, "a"))
        assert span is not None
        assert span.start_unix_ns == 1_000_001_500
        assert span.start_unix_ms == 1_000
