"""Tracing builtins: enable_tracing, trace_spans, trace_summary, trace_start,
trace_end, trace_id — thin wrappers over the `harn_async_trace` module API.
"""

from __future__ import annotations

from typing import Any

from harn_async_trace import (
    current_collector,
    format_summary,
    is_tracing_enabled,
    peek_spans,
    set_tracing_enabled,
    span_end,
    span_start_user_timing,
    span_to_dict,
)
from vm_demo.errors import HarnRuntimeError
from vm_demo.registry import arity, builtin, want

__all__: tuple[str, ...] = ()


@builtin("enable_tracing")
def _enable_tracing(vm: Any, args: list[Any]) -> None:
    arity("enable_tracing", args, 0, 1)
    on = want("enable_tracing", args[0], bool) if args else True
    if on and is_tracing_enabled():
        # Already on: keep the trace (the run's `pipeline` root and its open
        # spans); resetting here would orphan everything opened so far.
        vm.tracing = True
        return
    set_tracing_enabled(on)
    vm.tracing = on


@builtin("trace_spans")
def _trace_spans(vm: Any, args: list[Any]) -> list[Any]:
    return [span_to_dict(s) for s in peek_spans()]


@builtin("trace_summary")
def _trace_summary(vm: Any, args: list[Any]) -> str:
    return format_summary(peek_spans())


@builtin("trace_start")
def _trace_start(vm: Any, args: list[Any]) -> dict[str, Any]:
    """Open a `user_timing` span (recorded even when tracing is off)."""
    arity("trace_start", args, 1, 2)
    name = want("trace_start", args[0], str)
    attrs = want("trace_start", args[1], dict) if len(args) > 1 else None
    span_id, trace_id, parent_id, start_unix_ms = span_start_user_timing(name, attrs)
    return {
        "span_id": span_id,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "name": name,
        "start_unix_ms": start_unix_ms,
    }


@builtin("trace_end")
def _trace_end(vm: Any, args: list[Any]) -> Any:
    """End a span from `trace_start`; returns its duration in ms (nil if not open)."""
    arity("trace_end", args, 1)
    handle = args[0]
    span_id = handle.get("span_id") if isinstance(handle, dict) else handle
    if not isinstance(span_id, int) or isinstance(span_id, bool):
        raise HarnRuntimeError("trace_end() expects the value returned by trace_start()")
    span = span_end(span_id)
    return None if span is None else span.duration_ms


@builtin("trace_id")
def _trace_id(vm: Any, args: list[Any]) -> str:
    return str(current_collector().trace_id)
