"""harn-async-trace: an asyncio-native tracing runtime for an async VM.

Layers, bottom up (data flows one way):

* ``kinds``/``model`` - span kinds, metadata keys, the finished ``Span`` record;
* ``clock`` - where time comes from (system or mock), ``mock_time``;
* ``loop``/``_vtime`` - the virtual-time event loop (asyncio and uvloop);
* ``_core`` - the hot path (compiled, with a pure-Python fallback):
  per-task parent chains, open spans, storage of finished spans;
* ``collector`` - ``SpanCollector`` over the core;
* ``context``/``api``/``scoped``/``markers`` - the module API over the
  current collector;
* ``boundaries`` - spawn, parallel, pool, step, channels, suspension, threads,
  and plain asyncio (``TracedTaskGroup``, ``instrument_asyncio``, ``TracedQueue``);
* ``events`` - the start/end stream subscribers hear;
* ``export`` - summary text, dicts, file formats, OpenTelemetry, traceparent;
* ``testing``, ``pytest_plugin`` and ``cli`` - the test and command-line faces.

This module is the public surface: it re-exports, and defines nothing.
"""

from __future__ import annotations

from ._core import ACCELERATED as accelerated
from ._scoped import SpanHandle, span
from ._version import __version__
from .api import (
    current_span_id,
    current_span_link,
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
    span_start_detached_with_links,
    span_start_user_timing,
    span_start_with_links,
    take_spans,
)
from .boundaries import (
    AsyncioInstrumentation,
    ChannelClosedError,
    ChannelTrigger,
    ContextThreadPoolExecutor,
    DrainHandle,
    PoolClosedError,
    PoolFullError,
    ResumeHandle,
    SuspensionHandle,
    SuspensionToken,
    TracedChannel,
    TracedPool,
    TracedQueue,
    TracedTaskGroup,
    carry_context,
    emit_drain_decision,
    instrument_asyncio,
    step,
    traced_drain,
    traced_parallel,
    traced_resume,
    traced_run_in_executor,
    traced_spawn,
    traced_start_soon,
    traced_suspension,
    uninstrument_asyncio,
)
from .clock import (
    Clock,
    MockClock,
    MockClockError,
    SystemClock,
    active_mock_clock,
    advance_time,
    install_override,
    mock_time,
)
from .collector import SpanCollector
from .context import current_collector, default_collector, use_collector
from .events import (
    QueuedSubscription,
    SpanEndEvent,
    SpanStartEvent,
    Subscription,
    subscribe,
    subscribe_queued,
    unsubscribe,
)
from .export import format_summary, span_from_dict, span_to_dict
from .export.propagation import (
    TraceParent,
    continue_trace,
    extract_traceparent,
    inject_traceparent,
)
from .kinds import SpanKind, meta
from .loop import run, virtual_loop_factory
from .markers import (
    emit_deferred_tool_load,
    emit_marker_span,
    emit_model_route,
    emit_tool_mount,
)
from .model import LlmCallUsage, Span, SpanEvent, SpanLink

__all__ = (
    "AsyncioInstrumentation",
    "ChannelClosedError",
    "ChannelTrigger",
    "Clock",
    "ContextThreadPoolExecutor",
    "DrainHandle",
    "LlmCallUsage",
    "MockClock",
    "MockClockError",
    "PoolClosedError",
    "PoolFullError",
    "QueuedSubscription",
    "ResumeHandle",
    "Span",
    "SpanCollector",
    "SpanEndEvent",
    "SpanEvent",
    "SpanHandle",
    "SpanKind",
    "SpanLink",
    "SpanStartEvent",
    "Subscription",
    "SuspensionHandle",
    "SuspensionToken",
    "SystemClock",
    "TraceParent",
    "TracedChannel",
    "TracedPool",
    "TracedQueue",
    "TracedTaskGroup",
    "__version__",
    "accelerated",
    "active_mock_clock",
    "advance_time",
    "carry_context",
    "continue_trace",
    "current_collector",
    "current_span_id",
    "current_span_link",
    "default_collector",
    "emit_deferred_tool_load",
    "emit_drain_decision",
    "emit_marker_span",
    "emit_model_route",
    "emit_tool_mount",
    "extract_traceparent",
    "format_summary",
    "inject_traceparent",
    "install_override",
    "instrument_asyncio",
    "is_tracing_enabled",
    "meta",
    "mock_time",
    "peek_spans",
    "reset_tracing",
    "run",
    "set_tracing_enabled",
    "span",
    "span_attach_metadata",
    "span_attach_metadata_if_absent",
    "span_close",
    "span_end",
    "span_from_dict",
    "span_link",
    "span_record_event",
    "span_set_metadata",
    "span_start",
    "span_start_detached_with_links",
    "span_start_user_timing",
    "span_start_with_links",
    "span_to_dict",
    "step",
    "subscribe",
    "subscribe_queued",
    "take_spans",
    "traced_drain",
    "traced_parallel",
    "traced_resume",
    "traced_run_in_executor",
    "traced_spawn",
    "traced_start_soon",
    "traced_suspension",
    "uninstrument_asyncio",
    "unsubscribe",
    "use_collector",
    "virtual_loop_factory",
)
