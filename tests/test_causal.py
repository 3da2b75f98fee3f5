"""The causal tree (export/causal.py), its text (export/causal_text.py) and the snapshot text."""

from __future__ import annotations

import doctest
import importlib
import io
from typing import Any

import pytest

from harn_async_trace import MockClock, Span, SpanCollector, SpanKind, SpanLink, install_override
from harn_async_trace._snapshot import render_trace_tree
from harn_async_trace.export.causal import UsageTotals, causal_tree, span_usage
from harn_async_trace.export.causal_text import format_causal_summary, print_causal_summary


def mk(
    span_id: int,
    parent: int | None,
    name: str,
    start: int,
    dur: int,
    *,
    kind: str = "fn_call",
    trace: str = "t",
    links: list[SpanLink] | None = None,
    **metadata: Any,
) -> Span:
    return Span(
        trace_id=trace, span_id=span_id, parent_id=parent, kind=kind, name=name,
        start_ms=start, start_unix_ms=1_000 + start, duration_ms=dur,
        metadata=metadata or None, links=links,
    )  # fmt: skip


def link(target: int, relation: str, trace: str = "t") -> SpanLink:
    return SpanLink(trace, str(target), {"relation": relation})


def walk_names(spans: list[Span], trace: str = "t") -> list[tuple[str, int]]:
    tree = causal_tree(spans)
    return [(spans[i].name, depth) for i, depth in tree.walk(trace)]


class TestPlacement:
    def test_children_in_start_order_whatever_the_end_order(self) -> None:
        """Children print in start order (then id), not in the order they ended."""
        spans = [mk(3, 1, "late", 20, 1), mk(2, 1, "early", 5, 50), mk(1, None, "root", 0, 100)]
        assert walk_names(spans) == [("root", 0), ("early", 1), ("late", 1)]

    def test_detached_span_goes_under_the_span_it_links_to(self) -> None:
        """A detached branch sits under its parallel span with the link's relation."""
        spans = [
            mk(4, 3, "work", 10, 5),
            mk(3, None, "branch", 10, 5, kind="spawn", links=[link(2, "branch_of")]),
            mk(2, 1, "fan", 10, 6, kind="parallel"),
            mk(1, None, "root", 0, 30, kind="pipeline"),
        ]
        tree = causal_tree(spans)
        assert walk_names(spans) == [("root", 0), ("fan", 1), ("branch", 2), ("work", 3)]
        assert tree.relation == [None, "branch_of", None, None]
        assert list(tree.roots) == ["t"]

    def test_link_to_another_trace_or_unknown_span_leaves_a_root(self) -> None:
        """Only a link to a span of the same trace places a detached span."""
        spans = [
            mk(1, None, "root", 0, 10),
            mk(2, None, "remote", 1, 1, links=[link(1, "remote_parent", trace="other")]),
            mk(3, None, "dangling", 2, 1, links=[link(99, "spawned_from")]),
        ]
        assert walk_names(spans) == [("root", 0), ("remote", 0), ("dangling", 0)]

    def test_missing_parent_is_a_root_and_flagged(self) -> None:
        """A span whose parent id is absent is a root, marked missing_parent."""
        spans = [mk(1, None, "root", 0, 10), mk(5, 42, "orphan", 3, 1)]
        tree = causal_tree(spans)
        assert tree.missing_parent == [False, True]
        assert "fn_call orphan 1ms (parent #42 missing)" in format_causal_summary(spans)

    def test_traces_are_grouped_and_keyed_by_trace_and_id(self) -> None:
        """Same span ids in two traces never mix: each trace has its own tree."""
        spans = [
            mk(1, None, "a-root", 0, 10, trace="A"),
            mk(1, None, "b-root", 5, 10, trace="B"),
            mk(2, 1, "b-child", 6, 1, trace="B"),
            mk(2, 1, "a-child", 1, 1, trace="A"),
        ]
        tree = causal_tree(spans)
        assert list(tree.roots) == ["A", "B"]
        assert walk_names(spans, "A") == [("a-root", 0), ("a-child", 1)]
        assert walk_names(spans, "B") == [("b-root", 0), ("b-child", 1)]
        text = format_causal_summary(spans)
        assert text.index("Trace A: 2 spans, 10ms elapsed") < text.index("Trace B: 2 spans")

    @pytest.mark.parametrize(
        "spans",
        [
            pytest.param([mk(1, 1, "self", 0, 1)], id="own parent"),
            pytest.param([mk(1, 2, "a", 0, 1), mk(2, 1, "b", 0, 1)], id="two-cycle"),
            pytest.param(
                [mk(1, None, "a", 0, 1, links=[link(2, "x")]),
                 mk(2, None, "b", 0, 1, links=[link(1, "y")])],
                id="link ring",
            ),
            pytest.param([mk(1, None, "first", 0, 5), mk(1, 1, "dup", 1, 1)], id="dup id"),
        ],
    )
    def test_bad_input_prints_every_span_once(self, spans: list[Span]) -> None:
        """Cycles and reused ids never loop: each span is printed exactly once."""
        tree = causal_tree(spans)
        seen = sorted(i for trace in tree.roots for i, _ in tree.walk(trace))
        assert seen == list(range(len(spans)))
        assert len(format_causal_summary(spans).splitlines()) == 2 + len(spans)

    def test_a_deep_chain_does_not_recurse(self) -> None:
        """A trace nested past the recursion limit renders (the walk is iterative)."""
        spans = [mk(i, i - 1 if i > 1 else None, f"s{i}", i, 1) for i in range(1, 5_001)]
        lines = render_trace_tree(spans).splitlines()
        assert len(lines) == 5_000
        assert lines[-1] == "  " * 4_999 + "#5000 fn_call s5000"


class TestTotals:
    def test_linked_work_counts_once_under_its_starter(self) -> None:
        """A branch's tokens are in the branch, its parallel span and the root, once each."""
        spans = [
            mk(1, None, "root", 0, 100, kind="pipeline"),
            mk(2, 1, "fan", 0, 50, kind="parallel"),
            mk(3, None, "b0", 0, 50, kind="spawn", links=[link(2, "branch_of")]),
            mk(4, 3, "ask", 0, 10, kind="llm_call", input_tokens=10, output_tokens=5,
               cost_usd=0.25),
            mk(5, None, "b1", 0, 50, kind="spawn", links=[link(2, "branch_of")]),
            mk(6, 5, "ask", 0, 10, kind="llm_call", input_tokens=1, output_tokens=2,
               cost_usd=0.5),
            mk(7, 1, "final", 60, 10, kind="llm_call", input_tokens=100, output_tokens=0),
        ]
        tree = causal_tree(spans)
        totals = tree.totals()
        assert totals[0] == UsageTotals(3, 111, 7, 0.75)
        assert totals[1] == UsageTotals(2, 11, 7, 0.75)
        assert totals[2] == UsageTotals(1, 10, 5, 0.25)
        assert tree.trace_totals("t", totals) == totals[0]
        head = format_causal_summary(spans).splitlines()[0]
        assert head == "Trace t: 7 spans, 100ms elapsed, 3 LLM calls, 118 tokens, $0.75"

    @pytest.mark.parametrize(
        "metadata",
        [
            {"input_tokens": True, "output_tokens": "5", "cost_usd": float("nan")},
            {"input_tokens": -3, "cost_usd": -1.0},
            {"input_tokens": None, "cost_usd": float("inf")},
        ],
    )
    def test_bad_usage_values_are_ignored(self, metadata: dict[str, Any]) -> None:
        """Non-numbers, negatives, NaN and bools never count as tokens or cost."""
        usage = span_usage(mk(1, None, "x", 0, 1, kind="llm_call", **metadata))
        assert (usage.tokens, usage.cost_usd) == (0, 0.0)


class TestText:
    def _fan(self) -> list[Span]:
        clock = MockClock()
        with install_override(clock):
            c = SpanCollector()
            c.adopt_trace("trace_x")
            root = c.start(SpanKind.PIPELINE, "main")
            fan = c.start(SpanKind.PARALLEL, "fan")
            for i in range(2):
                branch_of = [link(fan, "branch_of", "trace_x")]
                b = c.start_detached_with_links(SpanKind.SPAWN, f"b{i}", branch_of)
                clock.advance(0.010 * (2 - i))
                c.end(b)
            c.end(fan)
            c.end(root)
        return c.spans()

    def test_plain_summary_text(self) -> None:
        """The plain summary: header with elapsed time, ↪ marks, two-space indent."""
        assert format_causal_summary(self._fan()) == (
            "Trace trace_x: 4 spans, 30ms elapsed\n"
            "\n"
            "pipeline main 30ms\n"
            "  parallel fan 30ms\n"
            "    ↪ branch_of spawn b0 20ms\n"
            "    ↪ branch_of spawn b1 10ms\n"
        )

    def test_snapshot_text_is_the_same_tree_with_ids(self) -> None:
        """The snapshot style prints the same order with #ids, offsets and link lines."""
        assert render_trace_tree(self._fan()) == (
            "#1 pipeline main @0ms +30ms\n"
            "  #2 parallel fan @0ms +30ms\n"
            "    ↪ branch_of #3 spawn b0 @0ms +20ms\n"
            '        link -> #2 (relation="branch_of")\n'
            "    ↪ branch_of #4 spawn b1 @20ms +10ms\n"
            '        link -> #2 (relation="branch_of")\n'
        )

    def test_terminal_draws_a_tree_and_escapes_control_codes(self) -> None:
        """On a terminal: rich tree guides, colour, and no raw escape from span text."""
        spans = [*self._fan()[:3], mk(4, None, "evil\x1b[2J", 0, 1, trace="trace_x")]
        buf = io.StringIO()
        print_causal_summary(spans, buf, color=True)
        out = buf.getvalue()
        assert "├── " in out
        assert "└── " in out
        assert "\x1b[" in out  # rich's own colour codes
        assert "evil\\x1b[2J" in out
        assert "evil\x1b[2J" not in out

    def test_huge_trace_on_a_terminal_is_plain(self) -> None:
        """Past RICH_LIMIT spans the terminal gets the plain text (no seconds of tree layout)."""
        from harn_async_trace.export.causal_text import RICH_LIMIT

        spans = [mk(i, 1 if i > 1 else None, f"s{i}", i, 1) for i in range(1, RICH_LIMIT + 2)]
        buf = io.StringIO()
        print_causal_summary(spans, buf, color=True)
        assert buf.getvalue() == format_causal_summary(spans)

    def test_not_a_terminal_gets_plain_text(self) -> None:
        """A file or pipe gets exactly the plain text."""
        buf = io.StringIO()
        print_causal_summary(self._fan(), buf)
        assert buf.getvalue() == format_causal_summary(self._fan())

    def test_unprintable_metadata_follows_the_encoding_rule(self) -> None:
        """A value JSON cannot hold is shown by the exporters' rule (repr, cycle marker)."""

        class Odd:
            def __repr__(self) -> str:
                return "<odd>"

        loop: list[Any] = []
        loop.append(loop)
        text = format_causal_summary([mk(1, None, "x", 0, 1, odd=Odd(), loop=loop)])
        assert 'odd="<odd>"' in text
        assert 'loop=["<cycle>"]' in text

    def test_empty(self) -> None:
        """No spans: the seed's sentence in the summary, '(no spans)' in snapshots."""
        assert format_causal_summary([]) == "No spans recorded.\n"
        assert render_trace_tree([]) == "(no spans)\n"


@pytest.mark.parametrize(
    "module", ["export.causal", "export.causal_text", "_snapshot"]
)
def test_docstring_examples(module: str) -> None:
    """The modules' docstring examples run and give what they show."""
    target = importlib.import_module(f"harn_async_trace.{module}")
    result = doctest.testmod(target, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
