"""Fault isolation: broken subscribers and exporters, a full collector, interrupts mid-export.

Each test injects one fault while a program runs (the fuzz edge programs of
``test_reliability_fuzz`` or a small traced block) and checks three promises:
tracing continues (the trace still satisfies every invariant), counters say
what was dropped, and spans that already ended are never lost.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from reliability_interpreter import run_program
from reliability_invariants import check
from reliability_programs import (
    Body,
    Channel,
    Parallel,
    Pool,
    Raise,
    Sleep,
    Span,
    Spawn,
    Timeout,
    programs,
)

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanEndEvent,
    SpanKind,
    SpanStartEvent,
    install_override,
    span,
    subscribe,
    subscribe_queued,
    use_collector,
)
from harn_async_trace.events import subscriber_error_count
from harn_async_trace.export import JsonlStreamWriter, OtelBridge, read_jsonl, write_jsonl

# Touches every boundary: spawn (cancelled), parallel (failing), pool, channel, timeout.
BUSY: Body = (
    Span((Sleep(1), Spawn((Span((Sleep(10),)),), "cancel", 2))),
    Parallel(((Span((Sleep(1),)),), (Raise(),), (Sleep(2),)), 2, True),
    Pool(((Span((Sleep(1),)),), (Sleep(1),), (Raise(),)), 1, 1),
    Channel(3, 2, (Span((Sleep(1),)),)),
    Timeout(1, (Span((Sleep(5),)),)),
)
LOOPS = pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])


def _ended_count(use_uvloop: bool) -> int:
    """How many spans BUSY ends when nothing is broken (the reference)."""
    return len(run_program(BUSY, use_uvloop=use_uvloop).collector.spans())


class FailingFile(io.StringIO):
    """A text file whose writes fail with ``error`` once ``ok_writes`` have succeeded."""

    def __init__(self, ok_writes: int, error: BaseException) -> None:
        super().__init__()
        self.ok_writes = ok_writes
        self.error = error
        self.writes = 0

    def write(self, text: str) -> int:
        if self.writes >= self.ok_writes:
            raise self.error
        self.writes += 1
        return super().write(text)


class TestBrokenSubscribers:
    @LOOPS
    def test_raising_subscriber_is_counted_and_the_trace_is_intact(self, use_uvloop: bool) -> None:
        """A subscriber raising on every event: each error counted, the trace still checks out."""
        reference = _ended_count(use_uvloop)
        seen: list[object] = []
        good = subscribe(seen.append)

        def broken(event: object) -> None:
            raise RuntimeError("subscriber bug")

        bad = subscribe(broken)
        run = run_program(BUSY, use_uvloop=use_uvloop)
        ended = len(run.collector.spans())
        assert check(run) == []
        assert ended == reference  # nothing lost to the fault
        assert bad.errors == 2 * ended  # one start and one end event per span
        assert subscriber_error_count() == bad.errors
        assert sum(isinstance(e, SpanEndEvent) for e in seen) == ended  # the good one heard all
        good.close()
        bad.close()

    def test_blocked_queued_subscriber_drops_and_counts_never_stalls(self) -> None:
        """A queued subscriber stuck on a lock: the program ends; dropped + delivered = emitted."""
        release = threading.Event()
        delivered: list[object] = []

        def stuck(event: object) -> None:
            release.wait(5)
            delivered.append(event)

        emitted: list[object] = []
        counter = subscribe(emitted.append)
        queued = subscribe_queued(stuck, maxsize=4)
        run = run_program(BUSY, use_uvloop=False)
        assert check(run) == []
        assert queued.dropped > 0
        release.set()
        assert queued.flush(timeout=5)
        assert queued.close(timeout=5)
        counter.close()
        assert len(delivered) + queued.dropped == len(emitted)
        assert queued.errors == 0


class TestFuzzedUnderFaults:
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(program=programs())
    def test_random_programs_with_a_broken_subscriber_and_a_failing_stream(
        self, program: Body
    ) -> None:
        """Random programs under two faults at once: trace intact, stream and errors add up."""
        broken = subscribe(lambda event: 1 / 0)
        failing = FailingFile(3, OSError(28, "No space left on device"))
        try:
            with JsonlStreamWriter(failing) as writer:
                run = run_program(program, use_uvloop=False)
                stream_errors = writer.errors
        finally:
            broken.close()
        ended = len(run.collector.spans())
        assert check(run) == []
        assert broken.errors == 2 * ended
        assert writer.count + stream_errors == ended
        assert writer.count == min(3, ended)


class TestFailingExporters:
    def test_stream_writer_failing_halfway_loses_no_ended_span(self) -> None:
        """The JSONL stream fails after 5 lines: error kept, the rest counted, nothing raised."""
        broken_file = FailingFile(5, OSError(28, "No space left on device"))
        with JsonlStreamWriter(broken_file) as writer:
            run = run_program(BUSY, use_uvloop=False)
            assert writer._subscription is not None
            assert writer._subscription.errors == 0  # the traced program never saw it
        ended = run.collector.spans()
        assert check(run) == []
        assert writer.count == 5
        assert writer.errors == len(ended) - 5
        assert writer.error is not None
        assert writer.error.errno == 28
        # Nothing was lost: the collector still holds every span; re-export them all.
        again = io.StringIO()
        assert write_jsonl(ended, again) == len(ended)
        assert [json.loads(line)["span_id"] for line in again.getvalue().splitlines()] == [
            s.span_id for s in ended
        ]

    def test_batch_export_failing_halfway_can_be_retried(self, tmp_path: object) -> None:
        """write_jsonl raising mid-file leaves the collector's spans in place for a retry."""
        run = run_program(BUSY, use_uvloop=False)
        before = run.collector.spans()
        with pytest.raises(OSError, match="disk gone"):
            write_jsonl(run.collector.spans(), FailingFile(3, OSError("disk gone")))
        assert run.collector.spans() == before
        target = io.StringIO()
        assert write_jsonl(run.collector.take_spans(), target) == len(before)

    def test_otel_exporter_failing_halfway_is_isolated(self) -> None:
        """An OTel exporter raising after 4 spans: bridge counts 4, the rest are counted errors."""

        class Flaky(SpanExporter):
            def __init__(self) -> None:
                self.exported = 0

            def export(self, spans: object) -> SpanExportResult:
                if self.exported >= 4:
                    raise ConnectionError("collector down")
                self.exported += 1
                return SpanExportResult.SUCCESS

        exporter = Flaky()
        with OtelBridge(exporter) as bridge:
            run = run_program(BUSY, use_uvloop=False)
            assert bridge._subscription is not None
            errors = bridge._subscription.errors
        ended = len(run.collector.spans())
        assert check(run) == []
        assert (bridge.count, errors) == (4, ended - 4)


class TestFullCollector:
    @LOOPS
    def test_collector_at_max_spans_counts_drops_and_streams_everything(
        self, use_uvloop: bool
    ) -> None:
        """At max_spans newer spans are dropped and counted; the stream still gets each of them."""
        dropped_events: list[int] = []
        listener = subscribe(
            lambda e: dropped_events.append(e.span_id)
            if isinstance(e, SpanEndEvent) and e.dropped
            else None
        )
        out = io.StringIO()
        clock = MockClock()
        with install_override(clock), JsonlStreamWriter(out) as writer:
            collector = SpanCollector(max_spans=3)
            with use_collector(collector):
                with span(SpanKind.PIPELINE, "main"):
                    for i in range(6):
                        with span(SpanKind.STEP, f"s{i}"):
                            pass
                collector.take_spans()  # frees room: tracing resumes keeping spans
                with span(SpanKind.STEP, "after"):
                    pass
        listener.close()
        assert collector.dropped_spans == 4  # s3, s4, s5 and main
        assert len(dropped_events) == 4
        assert [s.name for s in collector.spans()] == ["after"]
        assert writer.count == 8  # the file is the complete record
        assert collector.open_span_count() == 0


def _interrupted_abc(subscriber: Callable[[object], None]) -> SpanCollector:
    """Spans a > (b, c) with ``subscriber`` listening; b must end in KeyboardInterrupt."""
    collector = SpanCollector()
    listener = subscribe(subscriber)
    with use_collector(collector), span("pipeline", "a"):
        with pytest.raises(KeyboardInterrupt), span("step", "b"):
            pass
        with span("step", "c"):
            pass
    listener.close()
    return collector


class TestInterrupts:
    def test_keyboard_interrupt_at_span_end_keeps_the_span(self) -> None:
        """KeyboardInterrupt from a subscriber as a span ends: it propagates, the span is kept."""

        def interrupt(event: object) -> None:
            if isinstance(event, SpanEndEvent) and event.span.name == "b":
                raise KeyboardInterrupt

        collector = _interrupted_abc(interrupt)
        assert [(s.name, s.parent_id) for s in collector.spans()] == [
            ("b", 1),
            ("c", 1),
            ("a", None),
        ]
        assert collector.open_span_count() == 0

    def test_keyboard_interrupt_at_span_start_leaves_nothing_open(self) -> None:
        """KeyboardInterrupt in a start subscriber: nothing left open, later spans parent right."""
        fired: list[int] = []

        def interrupt(event: object) -> None:
            if isinstance(event, SpanStartEvent) and event.name == "b" and not fired:
                fired.append(1)
                raise KeyboardInterrupt

        collector = _interrupted_abc(interrupt)
        assert collector.open_span_count() == 0
        c = next(s for s in collector.spans() if s.name == "c")
        assert c.parent_id == 1

    def test_keyboard_interrupt_mid_file_export_loses_nothing(self) -> None:
        """KeyboardInterrupt while writing a trace file: spans are still in the collector."""
        run = run_program(BUSY, use_uvloop=False)
        ended = run.collector.spans()
        with pytest.raises(KeyboardInterrupt):
            write_jsonl(ended, FailingFile(2, KeyboardInterrupt()))
        assert run.collector.spans() == ended
        assert run.collector.open_span_count() == 0

    @LOOPS
    def test_cancel_mid_stream_every_ended_span_is_in_the_file(self, use_uvloop: bool) -> None:
        """A traced task cancelled mid-run while streaming: the file has every ended span, whole."""
        out = io.StringIO()

        async def job() -> None:
            with span(SpanKind.STEP, "outer"), span(SpanKind.STEP, "inner"):
                await asyncio.sleep(10)

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = asyncio.get_running_loop().create_task(job())
                await asyncio.sleep(1)
                task.cancel()
                await asyncio.wait([task])

        from harn_async_trace.loop import virtual_loop_factory

        clock = MockClock()
        with install_override(clock), JsonlStreamWriter(out) as writer:
            collector = SpanCollector()

            async def bound() -> None:
                with use_collector(collector):
                    await main()

            factory = virtual_loop_factory(clock, use_uvloop=use_uvloop)
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(bound())
        lines = out.getvalue().splitlines()
        assert writer.count == len(lines) == len(collector.spans()) == 3
        streamed = {json.loads(line)["name"]: json.loads(line) for line in lines}
        assert streamed["inner"]["metadata"] == {"cancelled": True}
        assert streamed["outer"]["metadata"] == {"cancelled": True}
        assert collector.open_span_count() == 0


@pytest.fixture
def tmp_trace(tmp_path: object) -> str:
    """A path for a trace file inside pytest's tmp dir."""
    return f"{tmp_path}/trace.jsonl"


def test_streamed_file_reads_back_after_a_failing_subscriber(tmp_trace: str) -> None:
    """A raising subscriber next to a file writer: the file reads back with every span."""
    listener = subscribe(lambda e: 1 / 0)
    with JsonlStreamWriter(tmp_trace):
        run = run_program(BUSY, use_uvloop=True)
    listener.close()
    assert [s.span_id for s in read_jsonl(tmp_trace)] == [s.span_id for s in run.collector.spans()]
