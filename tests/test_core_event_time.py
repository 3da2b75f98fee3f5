"""``record_event(..., at_ns=)``: an event at a given time, not at "now" (both cores)."""

from __future__ import annotations

from typing import Any

import pytest

from harn_async_trace import (
    MockClock,
    SpanCollector,
    install_override,
    span_record_event,
    span_start,
    use_collector,
)

MS = 1_000_000
START_WALL_MS = 1_700_000_000_000


class CountingClock(MockClock):
    """A mock clock that counts its monotonic reads."""

    reads = 0

    def monotonic_ns(self) -> int:
        self.reads += 1
        return super().monotonic_ns()


def _open(clock: MockClock) -> tuple[SpanCollector, int, int]:
    collector = SpanCollector()
    span_id = collector.open("llm_call", "chat")
    return collector, span_id, collector.open_details(span_id)[2]


class TestAtNs:
    def test_the_event_sits_at_the_given_time(self) -> None:
        """Time and offset come from at_ns (Unix ns, the clock of start_unix_ns), not from now."""
        clock = MockClock(start_wall_ms=START_WALL_MS)
        with install_override(clock):
            collector, span_id, start_unix_ns = _open(clock)
            clock.advance_ns(2_000 * MS)  # the span ends 2 s in; the event was at 125 ms
            assert collector.record_event(
                span_id, "first_token", {"time_to_first_token_ms": 125.0},
                at_ns=start_unix_ns + 125 * MS,
            )
            assert collector.record_event(span_id, "now")
            record = collector.end(span_id)
        assert record is not None
        assert start_unix_ns == START_WALL_MS * MS
        first, now = record.events
        assert (first.name, first.time_unix_ms, first.offset_ms, first.attributes) == (
            "first_token", START_WALL_MS + 125, 125, {"time_to_first_token_ms": 125.0})
        assert (now.time_unix_ms, now.offset_ms) == (START_WALL_MS + 2_000, 2_000)
        assert record.duration_ms == 2_000

    def test_positional_and_sub_millisecond(self) -> None:
        """at_ns is the fourth positional argument; times are floored to ms like "now" ones."""
        clock = MockClock(start_wall_ms=START_WALL_MS)
        with install_override(clock):
            collector, span_id, start_unix_ns = _open(clock)
            assert collector.record_event(span_id, "e", None, start_unix_ns + 3 * MS + 999_999)
            record = collector.end(span_id)
        assert record is not None
        (event,) = record.events
        assert (event.time_unix_ms, event.offset_ms, event.attributes) == (
            START_WALL_MS + 3, 3, {})

    def test_a_given_time_reads_no_clock(self) -> None:
        """With at_ns the clock is not read (it is the caller's time, not now)."""
        clock = CountingClock(start_wall_ms=START_WALL_MS)
        with install_override(clock):
            collector, span_id, start_unix_ns = _open(clock)
            before = clock.reads
            collector.record_event(span_id, "e", at_ns=start_unix_ns + MS)
            assert clock.reads == before
            collector.record_event(span_id, "e")
            assert clock.reads == before + 1

    def test_the_module_api_passes_it_on(self) -> None:
        """span_record_event(..., at_ns=) records at that time on the current collector."""
        clock = MockClock(start_wall_ms=START_WALL_MS)
        collector = SpanCollector()
        with install_override(clock), use_collector(collector):
            span_id = span_start("step", "s")
            start_unix_ns = collector.open_details(span_id)[2]
            clock.advance_ns(50 * MS)
            assert span_record_event(span_id, "mark", {"k": 1}, at_ns=start_unix_ns + 7 * MS)
            assert not span_record_event(0, "mark", at_ns=start_unix_ns)
            record = collector.end(span_id)
        assert record is not None
        assert [(e.offset_ms, e.attributes) for e in record.events] == [(7, {"k": 1})]

    def test_the_event_limit_still_counts(self) -> None:
        """A span that is full drops the event (True, counted), at_ns or not."""
        collector = SpanCollector(max_events_per_span=1)
        span_id = collector.open("step", "s")
        start_unix_ns = collector.open_details(span_id)[2]
        assert collector.record_event(span_id, "a", at_ns=start_unix_ns)
        assert collector.record_event(span_id, "b", at_ns=start_unix_ns)
        assert collector.dropped_events == 1
        record = collector.end(span_id)
        assert record is not None
        assert [e.name for e in record.events] == ["a"]


class TestValidation:
    @pytest.mark.parametrize("bad", ["1", 1.5, True, [1]])
    def test_a_non_int_is_a_type_error_naming_at_ns(self, bad: Any) -> None:
        collector = SpanCollector()
        span_id = collector.open("step", "s")
        with pytest.raises(TypeError, match=r"at_ns must be an int \(ns since the Unix epoch\)"):
            collector.record_event(span_id, "e", at_ns=bad)
        record = collector.end(span_id)
        assert record is not None
        assert record.events == []

    @pytest.mark.parametrize(("bad", "why"), [(-1, "at_ns must be >= 0"),
                                              (-(1 << 70), "at_ns must be >= 0"),
                                              (1 << 63, r"at_ns must be < 2\*\*63")])
    def test_out_of_range_is_a_value_error_naming_at_ns(self, bad: int, why: str) -> None:
        collector = SpanCollector()
        span_id = collector.open("step", "s")
        with pytest.raises(ValueError, match=why):
            collector.record_event(span_id, "e", None, bad)
        record = collector.end(span_id)
        assert record is not None
        assert record.events == []

    def test_keywords_and_arity(self) -> None:
        """All four parameters by name; unknown names and too many arguments are TypeErrors."""
        collector = SpanCollector()
        span_id = collector.open("step", "s")
        at = collector.open_details(span_id)[2]
        assert collector.record_event(span_id=span_id, name="e", attributes={"a": 1}, at_ns=at)
        with pytest.raises(TypeError):
            collector.record_event(span_id, "e", when=at)  # type: ignore[call-arg]  # the error under test
        with pytest.raises(TypeError):
            collector.record_event(span_id, "e", None, at, 1)  # type: ignore[call-arg]  # the error under test
        record = collector.end(span_id)
        assert record is not None
        assert [e.attributes for e in record.events] == [{"a": 1}]

    def test_a_span_that_is_not_open_is_false(self) -> None:
        """As before: False for ids that are not open (no validation of the rest)."""
        collector = SpanCollector()
        assert collector.record_event(99, "e", at_ns=0) is False
