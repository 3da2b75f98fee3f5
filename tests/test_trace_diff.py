"""`harn-trace diff` and export/trace_diff.py: structural comparison of two traces."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from harn_async_trace import Span, SpanLink
from harn_async_trace.cli import main
from harn_async_trace.export import diff_traces, format_trace_diff
from harn_async_trace.export import trace_diff as trace_diff_module

REPO = Path(__file__).resolve().parents[1]
AGENT = (REPO / "examples" / "agent.harn").read_text(encoding="utf-8")
MOCK = ["--mock-time", "1700000000000"]
TOOLS = (REPO / "examples" / "agent_tools.harn").read_text(encoding="utf-8")


def mk(span_id: int, parent: int | None, kind: str, name: str, dur: int, start: int = 0,
       links: list[SpanLink] | None = None, **metadata: object) -> Span:
    return Span(trace_id="t", span_id=span_id, parent_id=parent, kind=kind, name=name,
                start_ms=start, start_unix_ms=start, duration_ms=dur,
                metadata=dict(metadata) or None, links=links)  # fmt: skip


def run_variant(tmp_path: Path, folder: str, source: str,
                capsys: pytest.CaptureFixture[str]) -> Path:
    """Run a variant of the agent example as prog.harn (same span names) under mock time."""
    where = tmp_path / folder
    where.mkdir()
    (where / "agent_tools.harn").write_text(TOOLS, encoding="utf-8")
    (where / "prog.harn").write_text(source, encoding="utf-8")
    trace = where / "trace.jsonl"
    import os

    cwd = os.getcwd()
    os.chdir(where)
    try:
        assert main(["run", "prog.harn", *MOCK, "--jsonl", str(trace)]) == 0
    finally:
        os.chdir(cwd)
    capsys.readouterr()
    return trace


class TestCli:
    def test_same_program_twice_is_equal(self, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
        """Two mock-time runs of one program: no differences, exit 0."""
        a = run_variant(tmp_path, "a", AGENT, capsys)
        b = run_variant(tmp_path, "b", AGENT, capsys)
        assert main(["diff", str(a), str(b)]) == 0
        out = capsys.readouterr().out
        assert out.endswith("no differences\n")
        assert "33 spans, 454ms elapsed, 292 tokens, $0.0004371" in out

    def test_one_change_shows_durations_and_a_new_branch(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A fourth topic adds a research branch and a second summary for worker 0."""
        a = run_variant(tmp_path, "a", AGENT, capsys)
        more = AGENT.replace('"span links"]', '"span links", "sampling"]')
        assert more != AGENT
        b = run_variant(tmp_path, "b", more, capsys)
        assert main(["diff", str(a), str(b)]) == 1
        lines = capsys.readouterr().out.splitlines()
        added = [line for line in lines if line.startswith("+ ")]
        assert ("+ pipeline default > parallel each@prog.harn:39 > spawn each@prog.harn:39[3]"
                " (and 3 spans under it)") in added  # fmt: skip
        assert ("+ pipeline default > parallel count@prog.harn:48 > spawn count@prog.harn:48[0]"
                " > fn_call summarize#2 (and 1 span under it)") in added  # fmt: skip
        changed = [line for line in lines if line.startswith("~ ")]
        assert changed == [
            "~ pipeline default > parallel count@prog.harn:48 > spawn count@prog.harn:48[0]:"
            " duration 60ms -> 114ms (+54ms)"
        ]
        assert lines[-1] == (
            "total: spans 33 -> 39 (+6), elapsed 454ms -> 454ms (+0ms), tokens 292 -> 346 (+54),"
            " cost $0.0004371 -> $0.00046005 (+$0.00002295)"
        )

    def test_unreadable_file_exits_2(self, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
        """A missing or malformed trace is one error line and exit 2, not a traceback."""
        bad = tmp_path / "bad.jsonl"
        bad.write_text("[1, 2]\n")  # read as a --json array whose items are not spans
        assert main(["diff", str(bad), str(bad)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {bad}:1: expected a span object, got int\n"


class TestMatching:
    def test_branches_match_by_path_not_id(self) -> None:
        """Detached branches match under their parallel span whatever their ids."""
        def trace(first: int) -> list[Span]:
            link = SpanLink("t", "2", {"relation": "branch_of"})
            return [mk(1, None, "pipeline", "p", 10), mk(2, 1, "parallel", "fan", 10),
                    mk(first, None, "spawn", "b[0]", 5, links=[link]),
                    mk(first + 1, first, "llm_call", "m", 5, input_tokens=3)]
        diff = diff_traces(trace(3), trace(40))
        assert diff.equal

    def test_repeated_siblings_are_ranked(self) -> None:
        """Same-named siblings match in start order; a changed second one says #2."""
        a = [mk(1, None, "pipeline", "p", 10), mk(2, 1, "fn_call", "f", 1, start=0),
             mk(3, 1, "fn_call", "f", 2, start=5)]
        b = [mk(1, None, "pipeline", "p", 10), mk(2, 1, "fn_call", "f", 1, start=0),
             mk(3, 1, "fn_call", "f", 4, start=5)]
        text = format_trace_diff(diff_traces(a, b))
        assert "~ pipeline p > fn_call f#2: duration 2ms -> 4ms (+2ms)" in text

    def test_own_tokens_and_cost_are_compared(self) -> None:
        """A changed LLM call is one line with its token and cost deltas."""
        a = [mk(1, None, "pipeline", "p", 10), mk(2, 1, "llm_call", "m", 5, input_tokens=10,
                                                  output_tokens=2, cost_usd=0.1)]
        b = [mk(1, None, "pipeline", "p", 10), mk(2, 1, "llm_call", "m", 5, input_tokens=10,
                                                  output_tokens=7, cost_usd=0.3)]
        diff = diff_traces(a, b)
        assert len(diff.changed) == 1
        text = format_trace_diff(diff)
        assert "~ pipeline p > llm_call m: tokens 12 -> 17 (+5), cost $0.1 -> $0.3 (+$0.2)" in text

    def test_deep_traces_compare_in_linear_time(self) -> None:
        """A 5k-deep chain diffs (interned paths: no quadratic path tuples, no recursion)."""
        a = [mk(i, i - 1 if i > 1 else None, "fn_call", "f", 1) for i in range(1, 5_001)]
        b = a[:-1]
        diff = diff_traces(a, b)
        assert [len(path) for path, _ in diff.removed] == [5_000]


def test_docstring_examples() -> None:
    """The module's examples run and give what they show."""
    result = doctest.testmod(trace_diff_module)
    assert result.attempted > 0
    assert result.failed == 0
