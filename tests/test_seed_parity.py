"""One-to-one port of the seed's (harn-vm tracing.rs) unit tests."""

from __future__ import annotations

import pytest

from harn_async_trace import (
    LlmCallUsage,
    MockClock,
    SpanCollector,
    SpanKind,
    SpanLink,
    emit_model_route,
    emit_tool_mount,
    install_override,
    peek_spans,
    set_tracing_enabled,
    span_end,
    span_set_metadata,
    span_start,
    span_start_detached_with_links,
    span_start_user_timing,
    span_start_with_links,
    take_spans,
)


class TestCollectorSeed:
    def test_ids_start_at_one_and_increase(self) -> None:
        """Span ids are sequential from 1."""
        c = SpanCollector()
        assert [c.start(SpanKind.STEP, n) for n in "abc"] == [1, 2, 3]

    def test_parent_child(self) -> None:
        """A span started while another is open is its child; ending pops the chain."""
        c = SpanCollector()
        outer = c.start(SpanKind.PIPELINE, "main")
        inner = c.start(SpanKind.FN_CALL, "f")
        inner_span = c.end(inner)
        sibling = c.start(SpanKind.FN_CALL, "g")
        assert inner_span is not None
        assert inner_span.parent_id == outer
        assert c.end(sibling).parent_id == outer  # type: ignore[union-attr]  # the span was open
        assert c.end(outer).parent_id is None  # type: ignore[union-attr]  # the span was open

    def test_metadata(self) -> None:
        """Metadata set while open is on the finished span."""
        c = SpanCollector()
        s = c.start(SpanKind.LLM_CALL, "ask")
        c.set_metadata(s, "model", "gpt-x")
        c.set_metadata(s, "input_tokens", 12)
        assert c.end(s).metadata == {"model": "gpt-x", "input_tokens": 12}  # type: ignore[union-attr]  # the span was open

    def test_set_metadata_after_end_is_ignored(self) -> None:
        """set_metadata acts on open spans only."""
        c = SpanCollector()
        s = c.start(SpanKind.STEP, "a")
        c.end(s)
        c.set_metadata(s, "late", 1)
        assert c.spans()[0].metadata == {}

    def test_late_metadata_if_absent(self) -> None:
        """attach_metadata_if_absent reaches completed spans and never overwrites."""
        c = SpanCollector()
        s = c.start(SpanKind.STEP, "a")
        c.set_metadata(s, "kept", "first")
        c.end(s)
        c.attach_metadata_if_absent(s, "kept", "second")
        c.attach_metadata_if_absent(s, "late", True)
        assert c.spans()[0].metadata == {"kept": "first", "late": True}

    def test_links_preserved(self) -> None:
        """Links given at start are on the finished span, in order."""
        c = SpanCollector()
        links = [SpanLink("trace_a", "7", {"relation": "x"}), SpanLink("trace_b", "9")]
        s = c.start_with_links(SpanKind.STEP, "a", links)
        assert c.end(s).links == links  # type: ignore[union-attr]  # the span was open

    def test_detached_links_do_not_inherit_active_parent(self) -> None:
        """A detached span has no parent but its children nest under it."""
        c = SpanCollector()
        outer = c.start(SpanKind.PIPELINE, "main")
        link = c.span_link(outer)
        assert link is not None
        detached = c.start_detached_with_links(SpanKind.SPAWN, "job", [link])
        child = c.start(SpanKind.FN_CALL, "inside")
        child_span = c.end(child)
        detached_span = c.end(detached)
        assert child_span is not None
        assert child_span.parent_id == detached
        assert detached_span is not None
        assert detached_span.parent_id is None
        assert detached_span.links == [SpanLink(c.trace_id, str(outer))]
        assert c.current_span_id() == outer

    def test_event_offsets_monotonic(self) -> None:
        """Event offsets count from the span start and never go backwards."""
        clock = MockClock()
        with install_override(clock):
            c = SpanCollector()
            s = c.start(SpanKind.STEP, "a")
            for step_ms in (0, 5, 0, 20):
                clock.advance(step_ms / 1000)
                assert c.record_event(s, "tick")
            span = c.end(s)
        assert span is not None
        offsets = [e.offset_ms for e in span.events]
        assert offsets == [0, 5, 5, 25]
        assert [e.time_unix_ms for e in span.events] == [1_700_000_000_000 + o for o in offsets]


class TestModuleSeed:
    def test_noop_when_disabled(self) -> None:
        """With tracing off, span_start returns 0 and nothing is recorded."""
        set_tracing_enabled(False)
        s = span_start(SpanKind.FN_CALL, "f")
        span_set_metadata(s, "k", 1)
        assert s == 0
        assert span_end(s) is None
        assert span_start_with_links(SpanKind.STEP, "x", []) == 0
        assert span_start_detached_with_links(SpanKind.SPAWN, "x", []) == 0
        assert peek_spans() == []

    def test_user_timing_records_when_disabled(self) -> None:
        """span_start_user_timing records even when tracing is off."""
        set_tracing_enabled(False)
        span_id, trace_id, parent_id, start_unix_ms = span_start_user_timing(
            "phase", {"label": "warm"}
        )
        assert span_id == 1
        assert parent_id is None
        assert trace_id.startswith("trace_")
        span = span_end(span_id)
        assert span is not None
        assert span.kind is SpanKind.USER_TIMING
        assert span.metadata == {"label": "warm"}
        assert span.start_unix_ms == start_unix_ms
        assert take_spans() == [span]

    def test_enabling_resets(self) -> None:
        """Turning tracing on starts a fresh trace with ids from 1."""
        set_tracing_enabled(True)
        span_end(span_start(SpanKind.STEP, "a"))
        set_tracing_enabled(True)
        assert peek_spans() == []
        assert span_start(SpanKind.STEP, "b") == 1

    def test_kinds_stringify(self) -> None:
        """str(kind) is its wire value and members are the upper-case names."""
        assert str(SpanKind.FN_CALL) == "fn_call"
        assert SpanKind.DEFERRED_TOOL_LOAD.value == "deferred_tool_load"
        assert SpanKind("import") is SpanKind.IMPORT
        assert [k.value for k in SpanKind] == [
            "pipeline", "fn_call", "llm_call", "tool_call", "import", "parallel", "spawn",
            "step", "vm_setup", "suspension", "resume", "drain", "drain_decision",
            "pool_submit", "pool_dequeue", "channel_emit", "channel_match", "user_timing",
            "model_route", "tool_mount", "deferred_tool_load",
        ]  # fmt: skip

    def test_llm_usage_pairs(self) -> None:
        """metadata_pairs lists usage in seed order, cost last."""
        usage = LlmCallUsage("m", "p", 1, 2, 3, 4, cost_usd=0.25)
        assert usage.metadata_pairs() == [
            ("model", "m"), ("provider", "p"), ("input_tokens", 1), ("output_tokens", 2),
            ("cache_read_tokens", 3), ("cache_write_tokens", 4), ("cost_usd", 0.25),
        ]  # fmt: skip

    def test_llm_usage_unpriced_omits_cost(self) -> None:
        """An unpriced call has no cost_usd pair."""
        keys = [k for k, _ in LlmCallUsage("m", "p").metadata_pairs()]
        assert "cost_usd" not in keys
        assert len(keys) == 6

    def test_marker_spans_nest_under_active_span(self) -> None:
        """A marker is a zero-duration child of the current span, named after its kind."""
        clock = MockClock()
        with install_override(clock):
            set_tracing_enabled(True)
            outer = span_start(SpanKind.LLM_CALL, "ask")
            clock.advance(1)
            marker_id = emit_model_route("small", "large", "escalate")
            clock.advance(1)
            span_end(outer)
        marker = next(s for s in peek_spans() if s.span_id == marker_id)
        assert marker.parent_id == outer
        assert marker.kind is SpanKind.MODEL_ROUTE
        assert marker.name == "model_route"
        assert marker.duration_ns == 0
        assert marker.metadata == {"from_model": "small", "to_model": "large", "reason": "escalate"}

    def test_empty_tool_mount_is_noop(self) -> None:
        """emit_tool_mount with no tools records nothing."""
        set_tracing_enabled(True)
        assert emit_tool_mount([], "mcp") == 0
        assert peek_spans() == []
        emit_tool_mount(["grep", "ls"], "mcp", "local")
        assert peek_spans()[0].metadata == {
            "tool_names": ["grep", "ls"], "tool_count": 2, "source": "mcp", "detail": "local",
        }  # fmt: skip


@pytest.mark.parametrize("bad_kind", [42, None, "not_a_kind", b"step"])
def test_bad_kind_is_type_error(bad_kind: object) -> None:
    """A kind that is neither a SpanKind nor its value raises TypeError naming 'kind'."""
    with pytest.raises(TypeError, match="kind must be a SpanKind"):
        SpanCollector().start(bad_kind, "x")  # type: ignore[arg-type]  # runtime guard
