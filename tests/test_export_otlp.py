"""OpenTelemetry export: the SDK bridge (checked with InMemorySpanExporter) and OTLP/JSON files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from export_trace_builders import START_WALL_MS, rich_trace
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harn_async_trace import Span, SpanCollector
from harn_async_trace._trace_id import trace_id_hex
from harn_async_trace.export import (
    OtelBridge,
    OtelUnavailableError,
    export_to_otel,
    otlp_span_json,
    to_otel_span,
    write_otlp_json,
)
from harn_async_trace.export import otlp as otlp_module
from harn_async_trace.export import otlp_json as otlp_json_module
from harn_async_trace.export._otel.mapping import otel_span_id

REPO = Path(__file__).resolve().parents[1]


def _exported(spans: list[Span]) -> dict[int, ReadableSpan]:
    exporter = InMemorySpanExporter()
    assert export_to_otel(spans, exporter, batch_size=3) == len(spans)
    finished = exporter.get_finished_spans()
    assert len(finished) == len(spans)
    # Keyed by harn span id (the OTel span id is derived from it and the trace id).
    return {int(s.attributes["harn.span.id"]): s for s in finished}  # type: ignore[arg-type,index]  # the bridge sets it on every span


@pytest.fixture(scope="module")
def trace() -> tuple[list[Span], dict[int, ReadableSpan]]:
    """The reference trace and its OTel spans keyed by span id."""
    _, spans = rich_trace()
    return spans, _exported(spans)


class TestSdkBridge:
    def test_ids_and_parents(self, trace: tuple[list[Span], dict[int, ReadableSpan]]) -> None:
        """Trace id is the uuid7's 128 bits, span ids hashed from (trace, id), parents kept."""
        spans, otel = trace
        want_trace = int(spans[0].trace_id.removeprefix("trace_").replace("-", ""), 16)
        for span in spans:
            ours = otel[span.span_id]
            assert ours.context.trace_id == want_trace
            assert ours.context.is_valid
            assert ours.context.span_id == otel_span_id(span.trace_id, span.span_id)
            if span.parent_id is None:
                assert ours.parent is None
            else:
                assert ours.parent is not None
                assert ours.parent.span_id == otel[span.parent_id].context.span_id
                assert ours.parent.trace_id == want_trace
        assert len({s.context.span_id for s in otel.values()}) == len(spans)

    def test_span_ids_differ_across_traces(self) -> None:
        """Two runs of the same program export different span ids (backends dedupe by id)."""
        runs = []
        for _ in range(2):
            c = SpanCollector()
            root = c.start("pipeline", "main")
            c.end(c.start("step", "a"))
            c.end(root)
            runs.append(c.spans())
        ids = [{s.context.span_id for s in _exported(run).values()} for run in runs]
        assert [s.span_id for s in runs[0]] == [s.span_id for s in runs[1]]
        assert not ids[0] & ids[1]

    def test_span_ids_replay_under_a_mock_clock(self) -> None:
        """The same program under the same mock clock exports the very same ids."""
        first, second = rich_trace()[1], rich_trace()[1]
        assert sorted(s.context.span_id for s in _exported(first).values()) == sorted(
            s.context.span_id for s in _exported(second).values())

    def test_genai_names(self, trace: tuple[list[Span], dict[int, ReadableSpan]]) -> None:
        """llm_call is 'chat {model}', tool_call 'execute_tool {tool}', pipeline invoke_workflow."""
        spans, otel = trace
        names = {s.name: otel[s.span_id].name for s in spans}
        assert names["chat"] == "chat gpt-x"
        assert names["grep"] == "execute_tool grep"
        assert names["a"] == "a"
        pipeline = next(s for s in spans if s.kind.value == "pipeline")
        assert otel[pipeline.span_id].name == f"invoke_workflow {pipeline.name}"
        attributes = otel[pipeline.span_id].attributes
        assert attributes is not None
        assert attributes["gen_ai.operation.name"] == "invoke_workflow"

    def test_timestamps_equal_ours(
        self, trace: tuple[list[Span], dict[int, ReadableSpan]]
    ) -> None:
        """start/end are exact mock wall ns: start wall + monotonic start (+ duration)."""
        spans, otel = trace
        for span in spans:
            ours = otel[span.span_id]
            assert ours.start_time == START_WALL_MS * 1_000_000 + span.start_ns
            assert ours.end_time == ours.start_time + span.duration_ns
            assert ours.start_time // 1_000_000 == span.start_unix_ms

    def test_kinds_map_client_and_internal(
        self, trace: tuple[list[Span], dict[int, ReadableSpan]]
    ) -> None:
        """llm_call is a CLIENT span; tool_call and all others are INTERNAL."""
        spans, otel = trace
        for span in spans:
            want = "CLIENT" if span.kind.value == "llm_call" else "INTERNAL"
            assert otel[span.span_id].kind is getattr(otel_trace.SpanKind, want)

    def test_attributes_and_genai_conventions(
        self, trace: tuple[list[Span], dict[int, ReadableSpan]]
    ) -> None:
        """Metadata become harn.* attributes; llm/tool keys become their gen_ai.* names."""
        spans, otel = trace
        by_name = {s.name: s for s in spans}
        chat = otel[by_name["chat"].span_id].attributes
        assert chat is not None
        assert "model" not in chat
        assert "harn.model" not in chat
        assert chat["harn.cost_usd"] == 0.0125
        assert chat["harn.span.kind"] == "llm_call"
        assert chat["gen_ai.usage.cache_read.input_tokens"] == by_name["chat"].metadata[
            "cache_read_tokens"]
        assert chat["gen_ai.usage.cache_creation.input_tokens"] == by_name["chat"].metadata[
            "cache_write_tokens"]
        assert chat["gen_ai.operation.name"] == "chat"
        assert chat["gen_ai.provider.name"] == "mock"
        assert chat["gen_ai.request.model"] == "gpt-x"
        assert chat["gen_ai.usage.input_tokens"] == 120
        assert chat["gen_ai.usage.output_tokens"] == 30
        grep = otel[by_name["grep"].span_id].attributes
        assert grep is not None
        assert grep["gen_ai.operation.name"] == "execute_tool"
        assert grep["gen_ai.tool.name"] == "grep"
        assert json.loads(str(grep["harn.args"])) == {"pattern": "x", "paths": ["a", "b"]}
        plain = otel[by_name["a"].span_id].attributes
        assert plain is not None
        assert not any(key.startswith("gen_ai.") for key in plain)
        assert all(key.startswith("harn.") for key in plain)

    def test_links_events_and_status(
        self, trace: tuple[list[Span], dict[int, ReadableSpan]]
    ) -> None:
        """Links keep target ids and attributes; events keep times; errors set ERROR status."""
        spans, otel = trace
        for span in spans:
            ours = otel[span.span_id]
            got = [(ln.context.span_id, dict(ln.attributes or {})) for ln in ours.links]
            assert got == [
                (otel_span_id(ln.trace_id, int(ln.span_id)), ln.attributes) for ln in span.links
            ]
            for link in ours.links:
                assert link.context.trace_id == ours.context.trace_id
        chat = next(s for s in spans if s.name == "chat")
        (event,) = otel[chat.span_id].events
        assert event.name == "first_token"
        assert dict(event.attributes or {}) == {"index": 1}
        assert event.timestamp == chat.events[0].time_unix_ms * 1_000_000
        boom = otel[next(s for s in spans if s.name == "boom").span_id]
        assert boom.status.status_code is otel_trace.StatusCode.ERROR
        assert boom.status.description == "division by zero"
        assert boom.attributes is not None
        assert boom.attributes["error.type"] == "ZeroDivisionError"
        (exception,) = boom.events
        assert exception.name == "exception"
        assert exception.timestamp == boom.end_time
        assert dict(exception.attributes or {}) == {
            "exception.type": "ZeroDivisionError", "exception.message": "division by zero"}
        assert otel[chat.span_id].status.status_code is otel_trace.StatusCode.UNSET

    def test_matches_what_the_sdk_would_record(self) -> None:
        """A span made by the SDK's own tracer and our bridged span export the same shape."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("harn_async_trace")
        with tracer.start_as_current_span("main", start_time=10) as parent:
            child = tracer.start_span("a", start_time=20, attributes={"k": 1})
            child.end(end_time=30)
        native = {s.name: s for s in exporter.get_finished_spans()}
        c = SpanCollector()
        outer = c.start("pipeline", "main")
        inner = c.start("fn_call", "a")
        c.set_metadata(inner, "k", 1)
        c.end(inner)
        c.end(outer)
        bridged = {
            s.name.removeprefix("invoke_workflow "): s for s in _exported(c.spans()).values()
        }
        for name in ("main", "a"):
            ours, theirs = json.loads(bridged[name].to_json()), json.loads(native[name].to_json())
            assert ours.keys() == theirs.keys()
            assert ours["context"].keys() == theirs["context"].keys()
            assert ours["kind"] == theirs["kind"] == "SpanKind.INTERNAL"
            assert ours["context"]["trace_id"] == "0x" + trace_id_hex(c.trace_id)
        assert native["a"].parent is not None
        assert parent.get_span_context().span_id == native["a"].parent.span_id
        assert bridged["a"].parent is not None
        assert bridged["a"].parent.span_id == bridged["main"].context.span_id
        assert json.loads(bridged["a"].to_json())["attributes"] == {
            "harn.k": 1, "harn.span.kind": "fn_call", "harn.span.id": inner
        }

    def test_processor_target_gets_on_end(self) -> None:
        """A SpanProcessor target receives each span through on_end."""
        exporter = InMemorySpanExporter()
        _, spans = rich_trace()
        assert export_to_otel(spans, SimpleSpanProcessor(exporter)) == len(spans)
        assert len(exporter.get_finished_spans()) == len(spans)

    def test_live_bridge(self) -> None:
        """OtelBridge converts spans as they end, only for its trace when filtered."""
        exporter = InMemorySpanExporter()
        c, other = SpanCollector(), SpanCollector()
        with OtelBridge(exporter, trace_id=c.trace_id) as bridge:
            root = c.start("pipeline", "main")
            c.end(c.start("step", "a"))
            assert [s.name for s in exporter.get_finished_spans()] == ["a"]
            other.end(other.start("step", "elsewhere"))
            c.end(root)
        c.end(c.start("step", "after"))
        assert [s.name for s in exporter.get_finished_spans()] == ["a", "invoke_workflow main"]
        assert bridge.count == 2

    def test_odd_metadata_values_are_valid_attributes(self) -> None:
        """None is dropped, mixed lists and huge ints become strings, homogeneous lists stay."""
        c = SpanCollector()
        sid = c.start("step", "a")
        for key, value in {
            "none": None, "mixed": [1, "a"], "big": 1 << 70, "ints": [1, 2], "empty": [],
            "tuple": ("x", "y"),
        }.items():
            c.set_metadata(sid, key, value)
        c.end(sid)
        (otel,) = _exported(c.spans()).values()
        attrs: dict[str, Any] = dict(otel.attributes or {})
        assert "harn.none" not in attrs
        assert attrs["harn.mixed"] == '[1,"a"]'
        assert attrs["harn.big"] == str(1 << 70)
        assert tuple(attrs["harn.ints"]) == (1, 2)
        assert attrs["harn.empty"] == "[]"
        assert tuple(attrs["harn.tuple"]) == ("x", "y")


class TestWithoutSdk:
    @pytest.fixture
    def no_sdk(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Make the OTel SDK unimportable for the test."""
        otlp_module._sdk.cache_clear()
        otlp_json_module._sdk_encoder.cache_clear()
        for name in list(sys.modules):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "opentelemetry", None)
        yield
        otlp_module._sdk.cache_clear()
        otlp_json_module._sdk_encoder.cache_clear()

    @pytest.mark.usefixtures("no_sdk")
    def test_clear_error_names_the_extra(self) -> None:
        """Using the bridge without the SDK raises OtelUnavailableError naming [otel]."""
        _, spans = rich_trace()
        with pytest.raises(OtelUnavailableError, match=r"\[otel\]"):
            export_to_otel(spans, object())  # type: ignore[arg-type]  # runtime guard
        with pytest.raises(ImportError, match="harn-async-trace\\[otel\\]"):
            OtelBridge(object())  # type: ignore[arg-type]  # runtime guard

    @pytest.mark.usefixtures("no_sdk")
    def test_otlp_json_needs_no_sdk(self) -> None:
        """The OTLP/JSON writer works without the SDK."""
        _, spans = rich_trace()
        assert write_otlp_json(spans, io.StringIO()) == len(spans)

    def test_package_imports_without_sdk(self) -> None:
        """`import harn_async_trace` (and its exporters) works when opentelemetry is missing."""
        script = (
            "import sys; sys.modules['opentelemetry'] = None\n"
            "import harn_async_trace, harn_async_trace.export\n"
            "assert not [m for m in sys.modules if m.startswith('opentelemetry.')]\n"
            "print('ok')\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.stdout.strip() == "ok", result.stderr


def _attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        (kind, value), = item["value"].items()
        if kind == "intValue":
            value = int(value)
        elif kind == "arrayValue":
            value = tuple(next(iter(v.values())) for v in value["values"])
        out[item["key"]] = value
    return out


class TestOtlpJson:
    def test_file_structure(self, tmp_path: Path) -> None:
        """One resource, one scope, every span; ids are hex, 64-bit ints are strings."""
        _, spans = rich_trace()
        path = tmp_path / "t.otlp.json"
        assert write_otlp_json(spans, path, service_name="svc") == len(spans)
        doc = json.loads(path.read_text())
        (resource_spans,) = doc["resourceSpans"]
        resource = _attrs(resource_spans["resource"]["attributes"])
        assert resource["service.name"] == "svc"
        assert resource.keys() <= {"service.name", "telemetry.sdk.language", "telemetry.sdk.name",
                                   "telemetry.sdk.version"}
        (scope_spans,) = resource_spans["scopeSpans"]
        assert scope_spans["scope"]["name"] == "harn_async_trace"
        out = scope_spans["spans"]
        assert len(out) == len(spans)
        for item in out:
            assert len(item["traceId"]) == 32
            assert len(item["spanId"]) == 16
            int(item["traceId"], 16)
            assert isinstance(item["startTimeUnixNano"], str)
            assert item["kind"] in {1, 3}

    def test_agrees_with_sdk_bridge(
        self, trace: tuple[list[Span], dict[int, ReadableSpan]]
    ) -> None:
        """Every field of the JSON equals the SDK bridge's ReadableSpan."""
        spans, otel = trace
        for span in spans:
            data = otlp_span_json(span)
            ours = otel[span.span_id]
            assert data["traceId"] == f"{ours.context.trace_id:032x}" == trace_id_hex(span.trace_id)
            assert data["spanId"] == f"{ours.context.span_id:016x}"
            want_parent = None if ours.parent is None else f"{ours.parent.span_id:016x}"
            assert data.get("parentSpanId") == want_parent
            assert int(data["startTimeUnixNano"]) == ours.start_time
            assert int(data["endTimeUnixNano"]) == ours.end_time
            assert data["kind"] == (3 if ours.kind is otel_trace.SpanKind.CLIENT else 1)
            want = {k: (tuple(v) if isinstance(v, tuple | list) else v)
                    for k, v in (ours.attributes or {}).items()}
            assert _attrs(data["attributes"]) == want
            links = [
                (ln["spanId"], _attrs(ln.get("attributes", []))) for ln in data.get("links", [])
            ]
            assert links == [
                (f"{ln.context.span_id:016x}", dict(ln.attributes or {})) for ln in ours.links
            ]
            assert [(int(e["timeUnixNano"]), e["name"]) for e in data.get("events", [])] == [
                (e.timestamp, e.name) for e in ours.events
            ]
            is_error = ours.status.status_code is otel_trace.StatusCode.ERROR
            assert data["status"] == (
                {"code": 2, "message": ours.status.description} if is_error else {}
            )


def _normalized(data: dict[str, Any]) -> dict[str, Any]:
    """An OTLP/JSON span with attribute lists as dicts and empty fields left out."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "attributes":
            value = _attrs(value)
        elif key in ("events", "links"):
            value = [_normalized(item) for item in value]
        if value in ([], {}, None):
            continue
        out[key] = value
    return out


def test_hand_written_json_matches_the_sdk_encoder() -> None:
    """Without the extra the file is written by hand: it must equal the SDK encoder's output."""
    _, spans = rich_trace()
    for span in spans:
        by_sdk = _normalized(otlp_span_json(span))
        by_hand = _normalized(otlp_json_module._plain_span_json(span))
        assert by_hand == by_sdk


def test_resource_follows_the_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES name the service in the file and the bridge."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "research-agent")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=ml%20ops")
    _, spans = rich_trace()
    buf = io.StringIO()
    write_otlp_json(spans[:1], buf)
    resource = _attrs(json.loads(buf.getvalue())["resourceSpans"][0]["resource"]["attributes"])
    bridged = to_otel_span(spans[0]).resource.attributes
    for attributes in (resource, bridged):
        assert attributes["service.name"] == "research-agent"
        assert attributes["deployment.environment"] == "test"
        assert attributes["team"] == "ml ops"
        assert "service.instance.id" not in attributes
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert to_otel_span(spans[0]).resource.attributes["service.name"] == "harn-async-trace"
