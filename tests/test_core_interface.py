"""The collector's core interface: open/bind/close, per-span trace ids, lanes, reset ids."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from boundaries_support import Traced

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    SpanLink,
    install_override,
    span,
    traced_parallel,
    traced_spawn,
)


class TestOpenBindClose:
    def test_unpushed_boundary_span_is_not_the_callers_parent(self) -> None:
        """A span opened for a new task is not on the caller's chain and parents nothing there."""
        c = SpanCollector()
        root = c.open("pipeline", "p")
        job = c.open("spawn", "job", detached=True, push=False)
        after = c.open("step", "after")
        assert c.current_span_id() == after
        assert (c.end(after).parent_id, c.end(job).parent_id) == (root, None)  # type: ignore[union-attr]  # the span was open

    def test_bind_makes_the_span_the_whole_chain_and_resets(self) -> None:
        """Inside bind() spans nest under the bound span; outside, the old chain is back."""
        c = SpanCollector()
        root = c.open("pipeline", "p")
        job = c.open("spawn", "job", detached=True, push=False)
        with c.bind(job):
            assert c.current_span_id() == job
            inner = c.end(c.open("step", "in-task"))
        assert inner is not None
        assert inner.parent_id == job
        assert c.current_span_id() == root

    def test_bind_an_id_that_is_not_open_gives_an_empty_chain(self) -> None:
        """Binding an unknown id leaves nothing to parent on, instead of failing."""
        c = SpanCollector()
        c.open("pipeline", "p")
        with c.bind(999):
            assert c.current_span_id() is None

    def test_close_is_end_without_the_record(self) -> None:
        """close() stores the span like end() and says whether it was open."""
        clock = MockClock()
        with install_override(clock):
            c = SpanCollector()
            s = c.open("step", "a")
            clock.advance(0.25)
            assert c.close(s) is True
            assert c.close(s) is False
            marker = c.open("model_route", "model_route")
            clock.advance(1)
            assert c.close(marker, instant=True)
        assert [(x.name, x.duration_ms) for x in c.spans()] == [("a", 250), ("model_route", 0)]

    def test_open_with_metadata_is_seen_by_start_listeners(self) -> None:
        """metadata= is on the span before start listeners hear of it."""
        from harn_async_trace import subscribe

        heard: list[dict[str, object]] = []
        with subscribe(on_start=lambda e: heard.append(dict(e.metadata))):
            c = SpanCollector()
            c.end(c.open("llm_call", "m", metadata={"model": "x"}))
        assert heard == [{"model": "x"}]
        assert c.spans()[0].metadata == {"model": "x"}

    def test_open_details_and_is_open(self) -> None:
        """open_details reads an open span; is_open follows its life."""
        c = SpanCollector()
        p = c.open("pipeline", "p")
        s = c.open("step", "s")
        assert c.open_details(s)[:2] == (c.trace_id, p)
        assert c.is_open(s)
        c.end(s)
        assert not c.is_open(s)
        with pytest.raises(KeyError):
            c.open_details(s)

    def test_end_open_spans_closes_everything_newest_first(self) -> None:
        """What a stopped program left open is ended, marked, and counted."""
        c = SpanCollector()
        p = c.open("pipeline", "p")
        c.open("step", "s", metadata={"cancelled": False})
        assert c.end_open_spans(cancelled=True) == 2
        assert c.open_span_count() == 0
        by_name = {s.name: s for s in c.spans()}
        assert by_name["s"].metadata == {"cancelled": False}  # existing keys kept
        assert by_name["p"].metadata == {"cancelled": True}
        assert by_name["s"].parent_id == p


class TestResetIds:
    def test_an_old_id_never_ends_a_new_span(self) -> None:
        """The issue's case: a = start; reset; b = start; end(a) must not end b."""
        c = SpanCollector()
        a = c.start("step", "a")
        c.reset()
        b = c.start("step", "b")
        assert c.end(a) is None
        assert c.record_event(a, "x") is False
        assert c.is_open(b)
        assert c.end(b) is not None


class TestPerSpanTraceIds:
    def test_children_carry_the_new_trace(self) -> None:
        """new_trace roots a fresh trace id; spans under it carry it; others keep the default."""
        c = SpanCollector()
        service = c.open("pipeline", "service")
        request = c.open("step", "request", new_trace=True)
        child = c.open("fn_call", "handler")
        c.end(child)
        c.end(request)
        other = c.open("fn_call", "outside")
        c.end(other)
        c.end(service)
        by = {s.name: s for s in c.spans()}
        assert by["request"].parent_id is None
        assert by["request"].trace_id != c.trace_id
        assert by["handler"].trace_id == by["request"].trace_id
        assert by["handler"].parent_id == request
        assert by["outside"].trace_id == by["service"].trace_id == c.trace_id

    def test_three_concurrent_requests_get_three_traces(self, traced: Traced) -> None:
        """Each request's spans, its spawned task and its fan-out branches share its own trace."""

        async def request(i: int) -> None:
            with span("step", f"request-{i}", new_trace=True):
                await asyncio.sleep(0.01 * (3 - i))
                await traced_spawn(asyncio.sleep(0.01), name=f"bg-{i}")
                await traced_parallel([asyncio.sleep(0.001) for _ in range(2)], name=f"fan-{i}")

        async def main() -> None:
            with span("pipeline", "service"):
                await asyncio.gather(*(request(i) for i in range(3)))

        traced.run(main)
        spans = traced.collector.spans()
        by = {s.name: s for s in spans}
        traces = {by[f"request-{i}"].trace_id for i in range(3)}
        assert len(traces) == 3
        assert traced.collector.trace_id not in traces
        for i in range(3):
            mine = [s for s in spans if s.name.endswith(f"-{i}") or s.name.startswith(f"fan-{i}")]
            assert len(mine) == 5  # request, bg, fan (parallel) and its two branches
            assert {s.trace_id for s in mine} == {by[f"request-{i}"].trace_id}
            for s in mine:
                for link in s.links:
                    assert link.trace_id == by[f"request-{i}"].trace_id

    def test_new_trace_ids_replay_under_a_mock_clock(self) -> None:
        """Trace ids made by new_trace depend only on the program under a mock clock."""

        def ids() -> list[str]:
            with install_override(MockClock()):
                c = SpanCollector()
                for _ in range(3):
                    c.end(c.open("step", "r", new_trace=True))
                return [s.trace_id for s in c.spans()]

        first = ids()
        assert first == ids()
        assert len(set(first)) == 3


class TestLanes:
    def test_pushed_children_share_a_lane_and_tasks_start_one(self, traced: Traced) -> None:
        """Nested spans share their task's lane; spawned tasks and branches get their own."""

        async def branch() -> None:
            with span("fn_call", "in-branch"):
                await asyncio.sleep(0)

        async def main() -> None:
            with span("pipeline", "main"):
                with span("step", "inner"):
                    pass
                await traced_spawn(branch(), name="spawned")
                await traced_parallel([branch(), branch()], name="fan")

        traced.run(main)
        spans = traced.collector.spans()
        by = {s.name: s for s in spans}
        main_lane = by["main"].lane
        assert by["inner"].lane == main_lane == by["main"].span_id
        assert by["fan"].lane == main_lane  # the parallel span runs in the caller's task
        task_spans = [s for s in spans if s.kind is SpanKind.SPAWN]
        assert len(task_spans) == 3
        for task_span in task_spans:
            assert task_span.lane == task_span.span_id != main_lane
        for s in spans:
            if s.name == "in-branch":
                assert s.lane == s.parent_id  # nested under its task's span, in its lane

    def test_a_plain_child_task_shares_its_creators_lane(self) -> None:
        """Without a boundary, a copied context continues its creator's lane (documented)."""
        c = SpanCollector()
        root = c.open("pipeline", "p")
        child = contextvars.copy_context().run(c.open, "step", "in-copy")
        assert c.end(child).lane == root  # type: ignore[union-attr]  # the span was open


class TestLinksOnBoundarySpans:
    def test_handed_off_work_follows_the_linked_trace(self) -> None:
        """A boundary span opened elsewhere (a pool worker) carries the trace it links to."""
        c = SpanCollector()
        submit = c.open("pool_submit", "job", new_trace=True)
        link = c.span_link(submit)
        assert link is not None
        c.end(submit)
        worker = contextvars.copy_context().run(
            c.open, "pool_dequeue", "job", [link], True, False
        )
        assert c.end(worker).trace_id == link.trace_id != c.trace_id  # type: ignore[union-attr]  # the span was open

    def test_links_are_checked(self) -> None:
        """Links must be SpanLink values."""
        c = SpanCollector()
        with pytest.raises(TypeError, match=r"links\[0\] must be a SpanLink"):
            c.open("step", "s", ["nope"])  # type: ignore[list-item]  # runtime guard
        assert c.open("step", "ok", [SpanLink("t", "1")]) == 2
