"""--profile-json: spans plus per-kind totals and LLM token/cost totals."""

from __future__ import annotations

import io
import json
from typing import Any

from export_trace_builders import rich_trace

from harn_async_trace import LlmCallUsage, MockClock, Span, SpanCollector, install_override
from harn_async_trace.export import llm_totals, profile_totals, write_profile_json


def _profile(spans: list[Span]) -> dict[str, Any]:
    buf = io.StringIO()
    assert write_profile_json(spans, buf) == len(spans)
    doc: dict[str, Any] = json.loads(buf.getvalue())
    return doc


def _llm_trace() -> list[Span]:
    clock = MockClock()
    with install_override(clock):
        c = SpanCollector()
        root = c.start("pipeline", "main")
        for model, tokens, cost, ms in [
            ("big", (100, 10, 5, 1), 0.5, 30),
            ("big", (50, 5, 0, 0), 0.25, 20),
            ("small", (7, 3, 0, 0), None, 10),
        ]:
            sid = c.start("llm_call", model)
            usage = LlmCallUsage(model, "mock", *tokens, cost_usd=cost)
            for key, value in usage.metadata_pairs():
                c.set_metadata(sid, key, value)
            clock.advance_ns(ms * 1_000_000)
            c.end(sid)
        clock.advance_ns(40 * 1_000_000)
        c.end(root)
    return c.spans()


class TestProfile:
    def test_spans_are_the_jsonl_records(self) -> None:
        """The spans section lists every span with its ns fields, in order."""
        _, spans = rich_trace()
        doc = _profile(spans)
        assert [(d["span_id"], d["start_ns"], d["duration_ns"]) for d in doc["spans"]] == [
            (s.span_id, s.start_ns, s.duration_ns) for s in spans
        ]
        assert doc["span_count"] == len(spans)
        assert doc["trace_ids"] == [spans[0].trace_id]

    def test_kind_totals_with_self_time(self) -> None:
        """count/total/max per kind; self time subtracts direct children."""
        doc = _profile(_llm_trace())
        assert doc["kinds"]["llm_call"] == {
            "count": 3, "total_ms": 60.0, "self_ms": 60.0, "max_ms": 30.0
        }
        assert doc["kinds"]["pipeline"] == {
            "count": 1, "total_ms": 100.0, "self_ms": 40.0, "max_ms": 100.0
        }

    def test_llm_token_and_cost_totals(self) -> None:
        """Tokens and cost add up overall and per model; unpriced calls are counted."""
        llm = _profile(_llm_trace())["llm"]
        assert llm["calls"] == 3
        assert (llm["input_tokens"], llm["output_tokens"]) == (157, 18)
        assert (llm["cache_read_tokens"], llm["cache_write_tokens"]) == (5, 1)
        assert llm["cost_usd"] == 0.75
        assert llm["unpriced_calls"] == 1
        assert llm["by_model"]["big"]["calls"] == 2
        assert llm["by_model"]["big"]["input_tokens"] == 150
        assert llm["by_model"]["small"] == {
            "calls": 1, "input_tokens": 7, "output_tokens": 3, "cache_read_tokens": 0,
            "cache_write_tokens": 0, "cost_usd": 0.0, "unpriced_calls": 1,
        }
        assert llm_totals(_llm_trace()) == llm

    def test_concurrent_children_do_not_make_negative_self_time(self) -> None:
        """Overlapping children longer than the parent floor self time at 0."""
        _, spans = rich_trace()
        kinds = profile_totals(spans)["kinds"]
        assert all(row["self_ms"] >= 0 for row in kinds.values())
        assert sum(row["count"] for row in kinds.values()) == len(spans)

    def test_empty(self) -> None:
        """No spans is a valid, empty profile."""
        doc = _profile([])
        assert doc["spans"] == []
        assert doc["kinds"] == {}
        assert doc["llm"]["calls"] == 0
