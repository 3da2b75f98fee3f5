"""The span event stream: start/end events, unsubscribing, failing and slow subscribers."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from boundaries_support import run_on
from export_trace_builders import rich_trace

from harn_async_trace import (
    MockClock,
    Span,
    SpanCollector,
    SpanEndEvent,
    SpanKind,
    SpanLink,
    SpanStartEvent,
    install_override,
    subscribe,
    unsubscribe,
    use_collector,
)
from harn_async_trace import events as events_module
from harn_async_trace.events import subscribe_queued, subscriber_error_count

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture
def clock() -> Iterator[MockClock]:
    """A mock clock installed for the test."""
    mock = MockClock()
    with install_override(mock):
        yield mock


class TestEvents:
    def test_start_and_end_events_carry_seed_fields(self, clock: MockClock) -> None:
        """Start has id/parent/name/kind/links; end has the record with metadata and duration."""
        seen: list[SpanStartEvent | SpanEndEvent] = []
        c = SpanCollector()
        with subscribe(seen.append):
            outer = c.start("pipeline", "main")
            link = SpanLink(c.trace_id, str(outer), {"relation": "x"})
            inner = c.start_with_links(SpanKind.STEP, "load", [link])
            c.set_metadata(inner, "rows", 3)
            clock.advance(0.25)
            c.end(inner)
            c.end(outer)
        start_outer, start_inner, end_inner, end_outer = seen
        assert isinstance(start_inner, SpanStartEvent)
        assert (start_inner.span_id, start_inner.parent_id) == (inner, outer)
        assert (start_inner.name, start_inner.kind) == ("load", SpanKind.STEP)
        assert start_inner.links == (link,)
        assert start_inner.trace_id == c.trace_id
        assert isinstance(start_outer, SpanStartEvent)
        assert start_outer.parent_id is None
        assert isinstance(end_inner, SpanEndEvent)
        assert end_inner.span_id == inner
        assert end_inner.duration_ms == 250
        assert end_inner.span.metadata == {"rows": 3}
        assert end_inner.span == c.spans()[0]  # records are built when read
        assert not end_inner.dropped
        assert isinstance(end_outer, SpanEndEvent)
        assert end_outer.span_id == outer

    def test_dropped_flag_when_collector_is_full(self) -> None:
        """A span the full collector drops is still announced, flagged dropped."""
        ends: list[SpanEndEvent] = []
        c = SpanCollector(max_spans=1)
        with subscribe(lambda e: ends.append(e) if isinstance(e, SpanEndEvent) else None):
            c.end(c.start("step", "kept"))
            c.end(c.start("step", "lost"))
        assert [(e.span.name, e.dropped) for e in ends] == [("kept", False), ("lost", True)]

    def test_unsubscribe_by_handle_and_by_callback(self) -> None:
        """Both unsubscribe forms stop delivery and report whether anything was removed."""
        seen: list[object] = []
        c = SpanCollector()
        sub = subscribe(seen.append)
        assert unsubscribe(sub) is True
        assert unsubscribe(sub) is False
        subscribe(seen.append)
        subscribe(seen.append)
        assert unsubscribe(seen.append) is True
        c.end(c.start("step", "a"))
        assert seen == []

    def test_subscribe_rejects_non_callables(self) -> None:
        """A non-callable subscriber is a TypeError at subscribe time, not at emit time."""
        with pytest.raises(TypeError, match="callable"):
            subscribe(42)  # type: ignore[arg-type]  # runtime guard


class TestFailingSubscriber:
    def test_raising_subscriber_leaves_trace_intact(self, caplog: pytest.LogCaptureFixture) -> None:
        """A subscriber that always raises changes nothing in the trace; others still hear all."""
        _, reference = rich_trace()

        def broken(event: object) -> None:
            raise RuntimeError("subscriber bug")

        good: list[object] = []
        with caplog.at_level(logging.WARNING, logger="harn_async_trace.events"):
            bad = subscribe(broken)
            with subscribe(good.append):
                _, traced = rich_trace()
            bad.close()
        assert traced == reference
        assert len(good) == 2 * len(reference)
        assert bad.errors == 2 * len(reference)
        warnings = [r for r in caplog.records if "subscriber bug" in r.getMessage()]
        assert len(warnings) == 1  # reported once, then only counted

    def test_error_count_sums_live_subscriptions(self) -> None:
        """subscriber_error_count() adds up errors of the subscriptions still registered."""
        c = SpanCollector()
        with subscribe(lambda e: 1 / 0), subscribe(lambda e: None):
            c.end(c.start("step", "a"))
            assert subscriber_error_count() == 2

    def test_raising_subscriber_under_concurrency(self) -> None:
        """Many interleaved tasks with a raising subscriber still produce a complete trace."""

        async def main() -> list[str]:
            c = SpanCollector()
            with use_collector(c):
                root = c.start("pipeline", "root")

                async def worker(i: int) -> None:
                    sid = c.start("fn_call", f"w{i}")
                    for _ in range(3):
                        await asyncio.sleep(0)
                    c.end(sid)

                await asyncio.gather(*(worker(i) for i in range(50)))
                c.end(root)
                return sorted(s.name for s in c.spans() if s.parent_id == root)

        with subscribe(lambda e: 1 / 0) as sub:
            names = asyncio.run(main())
        assert names == sorted(f"w{i}" for i in range(50))
        assert sub.errors == 102


class TestQueuedSubscriber:
    def test_slow_subscriber_does_not_block_tracing(self) -> None:
        """A callback stuck on a lock never stalls span start/end; events arrive after release."""
        gate = threading.Event()
        seen: list[object] = []

        def slow(event: object) -> None:
            gate.wait(timeout=30)
            seen.append(event)

        c = SpanCollector()
        with subscribe_queued(slow, maxsize=1000) as sub:
            for i in range(100):
                c.end(c.start("step", f"s{i}"))  # would deadlock here if inline
            assert len(c.spans()) == 100
            gate.set()
            assert sub.flush(timeout=30)
        assert len(seen) == 200
        assert sub.dropped == 0
        ends = [e.span.name for e in seen if isinstance(e, SpanEndEvent)]
        assert ends == [f"s{i}" for i in range(100)]  # FIFO

    def test_bounded_queue_drops_and_counts(self) -> None:
        """With the consumer blocked, events past maxsize are dropped and counted."""
        gate = threading.Event()
        entered = threading.Event()
        seen: list[object] = []

        def blocked(event: object) -> None:
            entered.set()
            gate.wait(timeout=30)
            seen.append(event)

        c = SpanCollector()
        sub = subscribe_queued(blocked, maxsize=10)
        c.start("step", "first")  # taken by the consumer, which then blocks
        assert entered.wait(timeout=30)
        for i in range(20):
            c.start("step", f"s{i}")
        gate.set()
        assert sub.close(timeout=30)
        assert sub.dropped == 10
        assert len(seen) == 11

    def test_queued_errors_isolated_and_logged_once(self, caplog: pytest.LogCaptureFixture) -> None:
        """A raising queued callback is counted per event and logged a single time."""

        def broken(event: object) -> None:
            raise ValueError("queued bug")

        c = SpanCollector()
        with caplog.at_level(logging.WARNING, logger="harn_async_trace.events"):
            with subscribe_queued(broken) as sub:
                for _ in range(5):
                    c.end(c.start("step", "a"))
                assert sub.flush(timeout=30)
        assert sub.errors == 10
        assert len(c.spans()) == 5
        assert sum("queued bug" in r.getMessage() for r in caplog.records) == 1

    def test_close_drains_and_unsubscribes(self) -> None:
        """close() delivers what was queued, stops the thread and receives nothing after."""
        seen: list[object] = []
        c = SpanCollector()
        sub = subscribe_queued(seen.append)
        c.end(c.start("step", "a"))
        assert sub.close(timeout=30)
        assert len(seen) == 2
        c.end(c.start("step", "b"))
        assert len(seen) == 2
        assert sub.close(timeout=30)  # idempotent
        assert events_module._subscribers == ()

    def test_rejects_bad_maxsize(self) -> None:
        """maxsize must be a positive int."""
        with pytest.raises(ValueError, match="maxsize"):
            subscribe_queued(print, maxsize=0)

    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_queued_stream_matches_trace_under_many_tasks(self, loop_name: str) -> None:
        """500 interleaved tasks (some failing, some cancelled): the stream equals the trace."""
        seen: list[SpanStartEvent | SpanEndEvent] = []

        async def main() -> list[Span]:
            clock = MockClock()
            with install_override(clock):
                c = SpanCollector()
                with use_collector(c):
                    root = c.start("pipeline", "root")

                    async def worker(i: int) -> None:
                        sid = c.start("fn_call", f"w{i}")
                        try:
                            child = c.start("step", f"c{i}")
                            await asyncio.sleep(0)
                            clock.advance_ns(1000)
                            if i % 7 == 0:
                                raise ValueError(i)
                            await asyncio.sleep(0)
                            c.end(child)
                        finally:
                            c.end(sid)

                    tasks = [asyncio.create_task(worker(i)) for i in range(500)]
                    await asyncio.sleep(0)
                    for t in tasks[1::50]:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    c.end(root)
                    return list(c.spans())

        with subscribe_queued(seen.append, maxsize=100_000) as sub:
            spans = run_on(loop_name, main)
            assert sub.flush(timeout=30)
        ended = [e.span for e in seen if isinstance(e, SpanEndEvent)]
        started = {e.span_id: e for e in seen if isinstance(e, SpanStartEvent)}
        assert ended == spans
        for span in spans:
            assert started[span.span_id].parent_id == span.parent_id
        # children of failed or cancelled workers were never ended: started, not in the trace
        assert len(started) > len(spans)


class TestStartAndEndHooks:
    def test_end_only_listener_never_gets_a_start_event_built(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With only end listeners, the collector builds no start event at all."""
        built: list[object] = []
        real = events_module.SpanStartEvent

        def counting(*args: Any, **kwargs: Any) -> object:
            built.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(events_module, "SpanStartEvent", counting)
        ended: list[SpanEndEvent] = []
        c = SpanCollector()
        with subscribe(on_end=ended.append):
            c.end(c.start("step", "a"))
        assert built == []
        assert [e.span.name for e in ended] == ["a"]
        with subscribe(on_start=lambda e: None):
            c.end(c.start("step", "b"))
        assert len(built) == 1

    def test_split_hooks_and_one_callback(self) -> None:
        """on_start/on_end each hear their kind; a plain callback hears both, in order."""
        starts: list[str] = []
        ends: list[str] = []
        both: list[str] = []
        c = SpanCollector()
        with (
            subscribe(on_start=lambda e: starts.append(e.name)),
            subscribe(on_end=lambda e: ends.append(e.span.name)),
            subscribe(lambda e: both.append(type(e).__name__)),
        ):
            c.end(c.start("step", "a"))
        assert (starts, ends) == (["a"], ["a"])
        assert both == ["SpanStartEvent", "SpanEndEvent"]

    def test_start_event_carries_collector_lane_and_wall_start(self, clock: MockClock) -> None:
        """Start events say which collector, lane and wall time (for live exporters)."""
        heard: list[SpanStartEvent] = []
        c = SpanCollector()
        with subscribe(on_start=heard.append):
            s = c.start("step", "a")
        (event,) = heard
        assert event.collector is c
        assert event.lane == s
        assert event.start_unix_ns == clock.wall_ns()

    def test_bad_arguments(self) -> None:
        """A callback and split hooks together, or nothing at all, is a TypeError."""
        with pytest.raises(TypeError, match="not both"):
            subscribe(print, on_end=print)
        with pytest.raises(TypeError, match="needs a callback"):
            subscribe()
        with pytest.raises(TypeError, match="on_end must be callable"):
            subscribe(on_end=5)  # type: ignore[arg-type]  # runtime guard

    def test_unsubscribe_a_split_hook_by_its_function(self) -> None:
        """unsubscribe(fn) also finds a subscription made with on_end=fn."""
        seen: list[object] = []
        subscribe(on_end=seen.append)
        assert unsubscribe(seen.append)
        SpanCollector().end(SpanCollector().start("step", "a"))
        assert seen == []


class TestQueuedShutdown:
    def test_close_returns_within_timeout_when_stuck_and_full(self) -> None:
        """A stuck callback and a full queue: close(timeout) returns in time and reports."""
        gate = threading.Event()
        entered = threading.Event()

        def stuck(event: object) -> None:
            entered.set()
            gate.wait(timeout=30)

        c = SpanCollector()
        sub = subscribe_queued(on_end=stuck, maxsize=4)
        c.end(c.start("step", "first"))
        assert entered.wait(timeout=30)
        for i in range(10):
            c.end(c.start("step", f"s{i}"))
        import time

        started = time.monotonic()
        assert sub.close(timeout=0.2) is False
        assert time.monotonic() - started < 5  # it used to block forever here
        assert sub.undelivered == 5  # four queued plus the one in the callback
        gate.set()
        for _ in range(300):
            if not sub._thread.is_alive():
                break
            time.sleep(0.01)
        assert not sub._thread.is_alive()  # it stopped by itself once delivered

    def test_system_exit_in_a_queued_callback_is_counted(self) -> None:
        """SystemExit does not kill the delivery thread silently: counted, delivery goes on."""
        seen: list[str] = []

        def exits_once(event: SpanEndEvent) -> None:
            if not seen:
                seen.append("exit")
                raise SystemExit(3)
            seen.append(event.span.name)

        c = SpanCollector()
        with subscribe_queued(on_end=exits_once) as sub:
            c.end(c.start("step", "a"))
            c.end(c.start("step", "b"))
            assert sub.flush(timeout=30)
        assert sub.errors == 1
        assert seen == ["exit", "b"]
