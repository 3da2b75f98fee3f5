"""Exporters and the executor boundary given the wrong type: a TypeError naming the argument."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any, cast

import pytest

from harn_async_trace import format_summary, traced_run_in_executor
from harn_async_trace.export import (
    JsonlStreamWriter,
    OtelBridge,
    chrome_trace_events,
    export_to_otel,
    inject_traceparent,
    llm_totals,
    otlp_span_json,
    read_jsonl,
    span_from_dict,
    span_to_json_line,
    to_otel_span,
    write_chrome_trace,
    write_json,
    write_jsonl,
    write_otlp_json,
    write_profile_json,
)

# The calls below are wrong on purpose: cast(Any, ...) gets them past mypy.


def _in_loop(call: Callable[[], Any]) -> Callable[[], Any]:
    async def main() -> Any:
        return await call()

    return lambda: asyncio.run(main())


def _buf() -> io.StringIO:
    return io.StringIO()


# (label, call, text the TypeError must contain)
BAD: list[tuple[str, Callable[[], Any], str]] = [
    ("format_summary item", lambda: format_summary(cast(Any, [1, 2])),
     "format_summary(): spans[0] must be a Span, got int"),
    ("write_jsonl item", lambda: write_jsonl(cast(Any, [5]), _buf()),
     "write_jsonl(): spans[0] must be a Span, got int"),
    ("write_jsonl target", lambda: write_jsonl([], cast(Any, 5)),
     "write_jsonl(): target must be a path or an open text file, got int"),
    ("write_json item", lambda: write_json(cast(Any, [5]), _buf()), "write_json(): spans[0]"),
    ("write_json binary", lambda: write_json([], cast(Any, io.BytesIO())),
     "write_json(): target is a binary file"),
    ("profile item", lambda: write_profile_json(cast(Any, [5]), _buf()),
     "write_profile_json(): spans[0]"),
    ("llm_totals", lambda: llm_totals(cast(Any, 5)), "llm_totals(): spans must be a list"),
    ("chrome item", lambda: write_chrome_trace(cast(Any, ["x"]), _buf()),
     "write_chrome_trace(): spans[0] must be a Span, got str"),
    ("chrome events", lambda: list(chrome_trace_events(cast(Any, [None]))),
     "chrome_trace_events(): spans[0]"),
    ("otlp item", lambda: write_otlp_json(cast(Any, [5]), _buf()), "write_otlp_json(): spans[0]"),
    ("otlp span", lambda: otlp_span_json(cast(Any, 5)), "otlp_span_json(): span must be a Span"),
    ("json line", lambda: span_to_json_line(cast(Any, 5)), "span_to_json_line(): span must be"),
    ("to_otel_span", lambda: to_otel_span(cast(Any, 5)), "to_otel_span(): span must be a Span"),
    ("export_to_otel", lambda: export_to_otel([], cast(Any, 5)),
     "export_to_otel(): target must be an OTel SpanExporter"),
    ("stream target", lambda: JsonlStreamWriter(cast(Any, 5)),
     "JsonlStreamWriter(): target must be a path or an open text file, got int"),
    ("stream collector", lambda: JsonlStreamWriter(_buf(), collector=cast(Any, 5)),
     "JsonlStreamWriter(): collector must be a SpanCollector or None, got int"),
    ("stream trace_id", lambda: JsonlStreamWriter(_buf(), trace_id=cast(Any, 5)),
     "JsonlStreamWriter(): trace_id must be a str"),
    ("bridge target", lambda: OtelBridge(cast(Any, 5)),
     "OtelBridge(): target must be an OTel SpanExporter (export) or SpanProcessor"),
    ("inject span", lambda: inject_traceparent({}, span=cast(Any, 5)),
     "inject_traceparent(): span must be a Span, a SpanLink or None, got int"),
    ("executor", _in_loop(lambda: traced_run_in_executor(cast(Any, 5), print)),
     "traced_run_in_executor(): executor must be a concurrent.futures.Executor or None"),
    ("executor func", _in_loop(lambda: traced_run_in_executor(None, cast(Any, 5))),
     "traced_run_in_executor(): func must be callable, got int"),
    ("read_jsonl path", lambda: list(read_jsonl(cast(Any, 5))), "read_jsonl(): path must be"),
    ("span_from_dict", lambda: span_from_dict(cast(Any, 5)), "span_from_dict(): data must be"),
]


@pytest.mark.parametrize(("call", "fragment"), [pytest.param(c, f, id=n) for n, c, f in BAD])
def test_wrong_type_is_a_type_error_naming_the_argument(
    call: Callable[[], Any], fragment: str
) -> None:
    """The TypeError names the function and the argument, never an AttributeError from inside."""
    with pytest.raises(TypeError) as info:
        call()
    assert fragment in str(info.value)


def test_a_rejected_stream_writer_never_subscribed() -> None:
    """JsonlStreamWriter(5) fails at construction, so no broken subscriber is left behind."""
    from harn_async_trace.events import _subscribers

    before = len(_subscribers)
    with pytest.raises(TypeError):
        JsonlStreamWriter(cast(Any, 5))
    with pytest.raises(TypeError):
        OtelBridge(cast(Any, 5))
    assert len(_subscribers) == before
