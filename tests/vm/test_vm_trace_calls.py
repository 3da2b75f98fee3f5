"""`harn-trace run --trace-calls all|none|sample:N`: which fn_call spans a run records."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from harn_async_trace.cli import main
from vm_demo.trace_calls import parse_trace_calls

PROGRAM = """
fn leaf(x) { return x + 1 }
@step
fn stage(n) {
  var acc = 0
  for i in range(n) { acc = leaf(acc) }
  return acc
}
pipeline default() {
  let out = stage(10)
  let reply = llm_call("hi", {model: "gpt-4o-mini"})
  println(out)
}
"""


def _run(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], *flags: str
) -> list[dict[str, Any]]:
    program = tmp_path / "prog.harn"
    program.write_text(PROGRAM, encoding="utf-8")
    trace = tmp_path / f"trace{len(list(tmp_path.iterdir()))}.jsonl"
    code = main(["run", str(program), "--mock-time", "1700000000000", "--jsonl", str(trace),
                 *flags])
    out, err = capsys.readouterr()
    assert (code, err, out) == (0, "", "10\n")
    return [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]


def _kinds(spans: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in spans:
        counts[s["kind"]] = counts.get(s["kind"], 0) + 1
    return counts


class TestTraceCalls:
    def test_all_is_the_default_and_records_every_call(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without the flag (or with `all`) each of the 10 calls has its fn_call span."""
        default = _run(tmp_path, capsys)
        assert _kinds(default) == {"fn_call": 10, "step": 1, "llm_call": 1, "pipeline": 1}
        assert [s["name"] for s in default] == [s["name"] for s in _run(tmp_path, capsys,
                                                                       "--trace-calls", "all")]

    def test_none_keeps_every_other_kind(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`none` records no fn_call span; pipeline, step and llm_call stay, parents intact."""
        spans = _run(tmp_path, capsys, "--trace-calls", "none")
        assert _kinds(spans) == {"step": 1, "llm_call": 1, "pipeline": 1}
        by_kind = {s["kind"]: s for s in spans}
        assert by_kind["step"]["parent_id"] == by_kind["pipeline"]["span_id"]
        assert by_kind["llm_call"]["parent_id"] == by_kind["pipeline"]["span_id"]

    def test_sample_records_one_call_in_n_reproducibly(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`sample:3` keeps calls 3, 6 and 9 of 10, under the step span, the same every run."""
        first = _run(tmp_path, capsys, "--trace-calls", "sample:3")
        again = _run(tmp_path, capsys, "--trace-calls", "sample:3")
        assert first == again
        calls = [s for s in first if s["kind"] == "fn_call"]
        step = next(s for s in first if s["kind"] == "step")
        assert len(calls) == 3
        assert all(s["parent_id"] == step["span_id"] for s in calls)

    @pytest.mark.parametrize("bad", ["some", "sample:0", "sample:", "sample:x", "ALL"])
    def test_bad_values_are_usage_errors(
        self, bad: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad value exits 2 with a message that names the flag and the forms, no traceback."""
        with pytest.raises(SystemExit) as stop:
            main(["run", "x.harn", "--trace-calls", bad])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "--trace-calls takes all, none or sample:N" in err
        assert "Traceback" not in err

    def test_parse(self) -> None:
        """The three forms parse to how often a call is traced."""
        assert [parse_trace_calls(t) for t in ("all", "none", "sample:1", "sample:64")] == [
            1, 0, 1, 64,
        ]
