"""The package's public surface: __all__ matches DESIGN.md and what is importable."""

from __future__ import annotations

import harn_async_trace

DESIGN_NAMES = {
    "SpanKind", "meta", "Span", "SpanLink", "SpanEvent", "LlmCallUsage", "SpanCollector",
    "use_collector", "set_tracing_enabled", "is_tracing_enabled", "span_start",
    "span_start_with_links", "span_start_detached_with_links", "span_set_metadata",
    "span_attach_metadata", "span_attach_metadata_if_absent", "span_end",
    "span_start_user_timing", "span_record_event", "current_span_id", "span_link",
    "current_span_link", "take_spans", "peek_spans", "reset_tracing", "format_summary",
    "span_to_dict", "span", "emit_marker_span", "emit_model_route", "emit_tool_mount",
    "emit_deferred_tool_load", "Clock", "SystemClock", "MockClock", "install_override",
    "active_mock_clock", "MockClockError", "subscribe",
}  # fmt: skip


def test_all_is_a_sorted_tuple_of_real_names() -> None:
    """__all__ is a sorted tuple and each name resolves."""
    names = harn_async_trace.__all__
    assert isinstance(names, tuple)
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(harn_async_trace, name), name


def test_design_names_exported() -> None:
    """Every DESIGN.md name of the core is exported from the package."""
    assert DESIGN_NAMES - set(harn_async_trace.__all__) == set()


def test_no_public_name_left_out() -> None:
    """Every public attribute that is not a submodule is listed in __all__."""
    import types

    public = {
        name
        for name, value in vars(harn_async_trace).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public - set(harn_async_trace.__all__) == set()
