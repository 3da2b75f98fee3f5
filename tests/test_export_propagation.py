"""W3C traceparent: inject/extract round trip, continuing a trace, malformed headers."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanLink,
    install_override,
    set_tracing_enabled,
    span,
    use_collector,
)
from harn_async_trace._trace_id import trace_id_hex
from harn_async_trace.export import (
    TraceParent,
    continue_trace,
    export_to_otel,
    extract_traceparent,
    inject_traceparent,
    otlp_span_json,
    read_jsonl,
)
from harn_async_trace.export._otel.mapping import otel_span_id

REPO = Path(__file__).resolve().parents[1]
VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class TestRoundTrip:
    def test_inject_current_span_then_extract(self) -> None:
        """The header of the current span parses back to its trace and span id."""
        c = SpanCollector()
        with use_collector(c), span("pipeline", "main"), span("step", "call") as handle:
            headers: dict[str, str] = {}
            value = inject_traceparent(headers)
        assert headers == {"traceparent": value}
        parsed = extract_traceparent(headers)
        assert parsed is not None
        assert parsed.trace_id == c.trace_id
        assert parsed.trace_id_hex == trace_id_hex(c.trace_id)
        assert parsed.span_id == otel_span_id(c.trace_id, handle.span_id)
        assert parsed.sampled
        assert parsed.header() == value

    def test_inject_explicit_span_and_link(self) -> None:
        """A finished Span or a SpanLink can be injected; bad link ids are refused with None."""
        c = SpanCollector()
        record = c.end(c.start("step", "a"))
        assert record is not None
        by_span = inject_traceparent(span=record)
        by_link = inject_traceparent(span=SpanLink(record.trace_id, str(record.span_id)))
        assert by_span == by_link
        assert by_span is not None
        assert by_span.endswith(f"-{otel_span_id(record.trace_id, record.span_id):016x}-01")
        assert inject_traceparent(span=SpanLink(record.trace_id, "not-an-id")) is None

    def test_inject_without_current_span(self) -> None:
        """No current span (tracing off) injects nothing and leaves the carrier alone."""
        set_tracing_enabled(False)
        headers: dict[str, str] = {}
        assert inject_traceparent(headers) is None
        assert headers == {}

    def test_extract_variants(self) -> None:
        """Case-insensitive keys, surrounding spaces, unsampled flags and future versions parse."""
        assert extract_traceparent({"TraceParent": f"  {VALID} "}) == TraceParent(
            "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True
        )
        unsampled = extract_traceparent(VALID[:-2] + "00")
        assert unsampled is not None
        assert not unsampled.sampled
        future = extract_traceparent("cc" + VALID[2:] + "-what-the-future-holds")
        assert future is not None
        assert future.span_id_hex == "b7ad6b7169203331"

    def test_absent_header_is_silent(self, caplog: pytest.LogCaptureFixture) -> None:
        """No header at all is None without a warning."""
        with caplog.at_level(logging.WARNING):
            assert extract_traceparent({}) is None
            assert extract_traceparent(None) is None
        assert caplog.records == []


class TestMalformed:
    @pytest.mark.parametrize(
        "value",
        [
            "",
            "garbage",
            VALID.upper(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            VALID + "-extra",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "x" * 10_000,
        ],
    )
    def test_malformed_header_ignored_with_warning(
        self, value: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each malformed value gives None and exactly one warning, never an exception."""
        with caplog.at_level(logging.WARNING, logger="harn_async_trace.propagation"):
            assert extract_traceparent({"traceparent": value}) is None
        (record,) = caplog.records
        assert "malformed traceparent" in record.getMessage()

    @pytest.mark.parametrize("carrier", [{"traceparent": 42}, {"traceparent": b"00-ab"}])
    def test_non_string_values_are_ignored(
        self, carrier: dict[str, object], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Non-string header values are malformed, not crashes."""
        with caplog.at_level(logging.WARNING, logger="harn_async_trace.propagation"):
            assert extract_traceparent(carrier) is None  # type: ignore[arg-type]  # runtime guard
        assert len(caplog.records) == 1

    def test_broken_carrier_is_ignored(self, caplog: pytest.LogCaptureFixture) -> None:
        """A carrier whose lookup raises is reported and ignored."""

        class Broken(dict[str, str]):
            def get(self, key: str, default: object = None) -> str:
                raise RuntimeError("boom")

        with caplog.at_level(logging.WARNING, logger="harn_async_trace.propagation"):
            assert extract_traceparent(Broken()) is None
        assert "unreadable carrier" in caplog.records[0].getMessage()


class TestContinueTrace:
    def test_second_collector_continues_the_trace(self) -> None:
        """Continuing makes the same trace id, fresh non-colliding span ids, and an OTel parent."""
        upstream = SpanCollector()
        up_root = upstream.start("pipeline", "client")
        header = inject_traceparent(span=upstream.span_link(up_root))
        parent = extract_traceparent(header)
        assert parent is not None

        downstream = SpanCollector()
        link = continue_trace(parent, downstream)
        root = downstream.start_detached_with_links("pipeline", "server", [link])
        child = downstream.start("step", "work")
        downstream.end(child)
        downstream.end(root)
        upstream.end(up_root)

        assert downstream.trace_id == upstream.trace_id
        down_ids = {s.span_id for s in downstream.spans()}
        assert up_root not in down_ids
        assert all(0 < i < 1 << 64 for i in down_ids)
        exporter = InMemorySpanExporter()
        export_to_otel(upstream.spans() + downstream.spans(), exporter)
        otel = {s.name.removeprefix("invoke_workflow "): s for s in exporter.get_finished_spans()}
        server = otel["server"]
        assert server.parent is not None
        assert server.parent.is_remote
        assert server.parent.span_id == otel["client"].context.span_id
        assert server.context.trace_id == otel["client"].context.trace_id
        assert otel["work"].parent is not None
        assert otel["work"].parent.span_id == server.context.span_id
        server_span = next(s for s in downstream.spans() if s.name == "server")
        want = f"{otel_span_id(upstream.trace_id, up_root):016x}"
        assert otlp_span_json(server_span)["parentSpanId"] == want

    def test_deterministic_under_mock_clock(self) -> None:
        """Under equal mock clocks, continuing gives equal span ids (replays stay stable)."""
        parent = extract_traceparent(VALID)
        assert parent is not None
        runs = []
        for _ in range(2):
            with install_override(MockClock()):
                c = SpanCollector()
                continue_trace(parent, c)
                runs.append(c.start("step", "a"))
        assert runs[0] == runs[1]

    def test_across_a_real_process_boundary(self, tmp_path: Path) -> None:
        """A child process given the header continues the same trace under the remote parent."""
        c = SpanCollector()
        root = c.start("pipeline", "parent-process")
        header = inject_traceparent(span=c.span_link(root))
        out = tmp_path / "child.jsonl"
        script = textwrap.dedent(
            f"""
            from harn_async_trace import SpanCollector, use_collector, span_end
            from harn_async_trace import span_start_detached_with_links
            from harn_async_trace.export import extract_traceparent, continue_trace, write_jsonl
            c = SpanCollector()
            with use_collector(c):
                link = continue_trace(extract_traceparent({header!r}))
                span_end(span_start_detached_with_links("pipeline", "child-process", [link]))
            write_jsonl(c.spans(), {str(out)!r})
            """
        )
        subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
        (child,) = read_jsonl(out)
        assert child.trace_id == c.trace_id
        assert child.links[0].span_id == str(otel_span_id(c.trace_id, root))
        assert child.links[0].attributes == {"relation": "remote_parent"}
