"""Exporters: turn finished spans into text, dicts, files and foreign formats.

Exporters read finished ``Span`` records (or the event stream) only; they
never reach into a collector's internals. Modules:

* ``summary`` - the summary text tree (harn-vm's format); ``dicts`` - spans as plain data;
* ``causal`` - the causal tree (detached work under the span that started it)
  and once-only token/cost totals; ``causal_text`` - it as text (the CLI
  summary and trace snapshots); ``html`` - the offline HTML viewer;
  ``trace_diff`` - two traces compared;
* ``jsonl`` - JSON / streaming JSONL (and reading it back);
* ``profile`` - ``--profile-json`` (spans + per-kind and LLM totals);
* ``chrome`` - Chrome trace event format (Perfetto, chrome://tracing);
* ``otlp`` - OpenTelemetry SDK bridge (``[otel]`` extra, imported lazily);
  ``otlp_json`` - OTLP/JSON files (no SDK needed);
* ``otel_native`` - ``use_otel()``: live export, OTel context and OTel spans
  in the harn trace (``_otel.live``, ``_otel.context``, ``_otel.ingest``);
* ``propagation`` - W3C ``traceparent`` inject/extract.
"""

from __future__ import annotations

from .causal import CausalTree, UsageTotals, causal_tree, span_usage
from .causal_text import TreeStyle, format_causal_summary, print_causal_summary
from .chrome import chrome_trace_events, write_chrome_trace
from .dicts import span_from_dict, span_to_dict
from .html import html_page, write_html
from .jsonl import (
    JsonlStreamWriter,
    TraceFileError,
    read_jsonl,
    span_to_json_line,
    write_json,
    write_jsonl,
)
from .otel_native import OtelHandle, use_otel
from .otlp import OtelBridge, OtelUnavailableError, export_to_otel, to_otel_span, to_otel_spans
from .otlp_json import otlp_span_json, write_otlp_json
from .profile import llm_totals, profile_totals, write_profile_json
from .propagation import (
    TraceParent,
    continue_trace,
    extract_traceparent,
    format_traceparent,
    inject_traceparent,
)
from .summary import format_summary
from .trace_diff import SpanChange, TraceDiff, diff_traces, format_trace_diff

__all__ = (
    "CausalTree",
    "JsonlStreamWriter",
    "OtelBridge",
    "OtelHandle",
    "OtelUnavailableError",
    "SpanChange",
    "TraceDiff",
    "TraceFileError",
    "TraceParent",
    "TreeStyle",
    "UsageTotals",
    "causal_tree",
    "chrome_trace_events",
    "continue_trace",
    "diff_traces",
    "export_to_otel",
    "extract_traceparent",
    "format_causal_summary",
    "format_summary",
    "format_trace_diff",
    "format_traceparent",
    "html_page",
    "inject_traceparent",
    "llm_totals",
    "otlp_span_json",
    "print_causal_summary",
    "profile_totals",
    "read_jsonl",
    "span_from_dict",
    "span_to_dict",
    "span_to_json_line",
    "span_usage",
    "to_otel_span",
    "to_otel_spans",
    "use_otel",
    "write_chrome_trace",
    "write_html",
    "write_json",
    "write_jsonl",
    "write_otlp_json",
    "write_profile_json",
)
