"""format_summary text and span_to_dict / span_from_dict."""

from __future__ import annotations

from typing import Any, cast

import pytest

from harn_async_trace import (
    MockClock,
    Span,
    SpanCollector,
    SpanKind,
    SpanLink,
    format_summary,
    install_override,
    span_from_dict,
    span_to_dict,
)


def _small_tree() -> list[Span]:
    clock = MockClock()
    with install_override(clock):
        c = SpanCollector()
        root = c.start(SpanKind.PIPELINE, "main")
        llm = c.start(SpanKind.LLM_CALL, "ask")
        c.set_metadata(llm, "model", "gpt-é")
        c.set_metadata(llm, "input_tokens", 12)
        c.set_metadata(llm, "extra", {"z": [1, 2], "a": None})
        clock.advance(0.120)
        c.end(llm)
        tool = c.start(SpanKind.TOOL_CALL, "grep")
        clock.advance(0.030)
        c.end(tool)
        clock.advance(0.005)
        c.end(root)
        other = c.start(SpanKind.PIPELINE, "second")
        clock.advance(1)
        c.end(other)
    return c.spans()


def test_exact_text() -> None:
    """The tree matches the seed format byte for byte: lines joined by newline, none at the end."""
    assert format_summary(_small_tree()) == (
        "Trace: 4 spans, 1155ms total\n"
        "\n"
        "pipeline main 155ms\n"
        '  llm_call ask 120ms (extra={"a":null,"z":[1,2]}, input_tokens=12, model="gpt-é")\n'
        "  tool_call grep 30ms\n"
        "pipeline second 1000ms"
    )


def test_empty() -> None:
    """No spans gives the seed's sentence."""
    assert format_summary([]) == "No spans recorded."


def test_orphans_counted_not_printed() -> None:
    """A span whose parent is absent counts in the header but is not printed."""
    spans = _small_tree()
    without_root = [s for s in spans if s.name != "main"]
    text = format_summary(without_root)
    assert text.startswith("Trace: 3 spans, 1000ms total\n")
    assert "ask" not in text
    assert "pipeline second 1000ms" in text


def _span(trace: str, span_id: int, parent: int | None, name: str) -> Span:
    return Span(trace_id=trace, span_id=span_id, parent_id=parent, kind=SpanKind.FN_CALL,
                name=name, start_ms=0, start_unix_ms=0, duration_ms=1)  # fmt: skip


class TestBadTrees:
    def test_duplicate_id_naming_itself_as_parent_terminates(self) -> None:
        """Two spans share an id and one names the other as parent: each printed once."""
        text = format_summary([_span("t", 1, None, "a"), _span("t", 1, 1, "b")])
        assert text.splitlines()[2:] == ["fn_call a 1ms", "  fn_call b 1ms"]

    def test_self_parent_and_cycle_are_counted_not_printed(self) -> None:
        """A span that is its own parent, and two that are each other's, have no root."""
        spans = [_span("t", 1, 1, "self"), _span("t", 2, 3, "x"), _span("t", 3, 2, "y"),
                 _span("t", 4, None, "root")]  # fmt: skip
        assert format_summary(spans) == "Trace: 4 spans, 1ms total\n\nfn_call root 1ms"

    def test_traces_reusing_ids_stay_apart(self) -> None:
        """Two traces with the same ids (a re-enabled collector): linear, not exponential."""
        depth = 18  # keyed by span_id alone this prints 2**18 lines
        spans = [
            _span(trace, i, None if i == 1 else i - 1, f"{trace}{i}")
            for trace in ("t1", "t2")
            for i in range(1, depth + 1)
        ]
        lines = format_summary(spans).splitlines()
        assert len(lines) == 2 + 2 * depth
        assert lines[2 + depth - 1] == "  " * (depth - 1) + f"fn_call t1{depth} 1ms"
        assert lines[2 + depth] == "fn_call t21 1ms"

    def test_wrong_element_type_names_the_argument(self) -> None:
        """format_summary([1, 2]) is a TypeError naming spans[0], not an AttributeError."""
        with pytest.raises(TypeError, match=r"format_summary\(\): spans\[0\] must be a Span"):
            format_summary(cast(Any, [1, 2]))

    def test_non_str_metadata_keys_sort(self) -> None:
        """Metadata keys of mixed types are shown by their text, sorted, never a TypeError."""
        span = Span(trace_id="t", span_id=1, parent_id=None, kind=SpanKind.STEP, name="s",
                    start_ms=0, start_unix_ms=0, duration_ms=0,
                    metadata=cast(Any, {(1, 2): "t", 3: "i", "a": 1}))  # fmt: skip
        assert format_summary([span]).splitlines()[2] == 'step s 0ms ((1, 2)="t", 3="i", a=1)'


def test_deep_tree_is_linear_and_recursion_free() -> None:
    """A 5000-deep chain renders without recursion errors."""
    c = SpanCollector()
    ids = [c.start(SpanKind.FN_CALL, f"f{i}") for i in range(5_000)]
    for span_id in reversed(ids):
        c.end(span_id)
    lines = format_summary(c.spans()).splitlines()
    assert len(lines) == 5_002
    assert lines[-1].startswith(" " * 2 * 4_999 + "fn_call f4999 ")


def test_span_to_dict_keys_and_round_trip() -> None:
    """span_to_dict omits empty collections and span_from_dict inverts it."""
    c = SpanCollector()
    s = c.start_with_links(SpanKind.SPAWN, "job", [SpanLink("t", "1", {"relation": "x"})])
    c.record_event(s, "tick")
    c.end(s)
    plain = c.end(c.start(SpanKind.STEP, "plain"))
    assert plain is not None
    assert list(span_to_dict(plain)) == [
        "trace_id", "span_id", "parent_id", "kind", "name", "start_ms", "start_unix_ms",
        "duration_ms",
    ]  # fmt: skip
    for span in c.spans():
        data = span_to_dict(span)
        assert span_from_dict(data) == Span(
            trace_id=span.trace_id, span_id=span.span_id, parent_id=span.parent_id,
            kind=span.kind, name=span.name, start_ms=span.start_ms,
            start_unix_ms=span.start_unix_ms, duration_ms=span.duration_ms,
            metadata=span.metadata, links=span.links, events=span.events,
        )  # fmt: skip
    first = span_to_dict(c.spans()[0])
    assert first["links"] == [{"trace_id": "t", "span_id": "1", "attributes": {"relation": "x"}}]
    assert list(first["events"][0]) == ["name", "time_unix_ms", "offset_ms"]
