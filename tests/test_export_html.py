"""The HTML viewer's Python side: data layer, page assembly, `view` and `run --html`.

What the page does with the data is tested in headless Chromium
(tests_browser/, `make test-browser`).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from harn_async_trace import Span, SpanLink
from harn_async_trace.cli import main
from harn_async_trace.export import html_page, write_html
from harn_async_trace.export._viewer.data import safe_value, viewer_json, viewer_payload

REPO = Path(__file__).resolve().parents[1]
MOCK = ["--mock-time", "1700000000000"]


def mk(span_id: int, parent: int | None, start: int, dur: int, *, kind: str = "fn_call",
       name: str = "", trace: str = "t", links: list[SpanLink] | None = None, lane: int = 0,
       **metadata: Any) -> Span:
    return Span(
        trace_id=trace, span_id=span_id, parent_id=parent, kind=kind, name=name or f"s{span_id}",
        start_ms=start, start_unix_ms=start, duration_ms=dur, metadata=metadata or None,
        links=links, lane=lane,
    )  # fmt: skip


def payload_of(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="harn-trace-data">(.*?)</script>',
                      page, re.S)  # fmt: skip
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


class TestLayout:
    def test_rows_on_a_lane_never_overlap(self) -> None:
        """Overlapping children of one parent go to different rows of the lane."""
        spans = [mk(1, None, 0, 100), mk(2, 1, 0, 50), mk(3, 1, 10, 50), mk(4, 1, 60, 10),
                 mk(5, 2, 5, 5)]  # fmt: skip
        data = viewer_payload(spans)
        rows = data["span"]["row"]
        starts, durs = data["span"]["start"], data["span"]["dur"]
        by_row: dict[int, list[tuple[int, int]]] = {}
        for i, r in enumerate(rows):
            by_row.setdefault(r, []).append((starts[i], starts[i] + durs[i]))
        for intervals in by_row.values():
            intervals.sort()
            for (_, a_end), (b_start, _) in itertools.pairwise(intervals):
                assert a_end <= b_start
        assert rows[1] > rows[0]
        assert rows[4] > rows[1]

    def test_a_detached_task_gets_its_own_lane_and_an_arrow(self) -> None:
        """A linked spawn is a lane of its own, and its link resolves to an arrow."""
        spans = [mk(1, None, 0, 100, kind="pipeline"),
                 mk(2, None, 10, 20, kind="spawn",
                    links=[SpanLink("t", "1", {"relation": "spawned_from"})]),
                 mk(3, 2, 12, 5)]  # fmt: skip
        data = viewer_payload(spans)
        assert [lane["name"] for lane in data["lanes"]] == ["pipeline s1", "spawn s2"]
        assert data["links"] == [[0, 1, "spawned_from"]]
        assert data["detail"]["1"]["relation"] == "spawned_from"

    def test_recorded_lanes_are_used_when_every_span_has_one(self) -> None:
        """Overlapping spans of one recorded task share its lane, on separate rows."""
        spans = [mk(1, None, 0, 100, lane=1), mk(2, 1, 0, 50, lane=1),
                 mk(3, 1, 10, 50, lane=1), mk(4, None, 5, 10, lane=4),
                 mk(5, None, 20, 5, lane=1)]  # fmt: skip  # 5: detached, same task
        data = viewer_payload(spans)
        lanes = data["lanes"]
        assert [lane["name"] for lane in lanes] == ["fn_call s1", "fn_call s4"]
        rows = data["span"]["row"]
        assert rows[1] != rows[2]
        assert {rows[i] for i in (0, 1, 2, 4)} <= set(range(lanes[0]["rows"]))
        assert rows[3] == lanes[1]["row0"]
        # Without recorded lanes the tree decides: 3 overlaps 2, the detached 5 is its own task.
        tree_lanes = viewer_payload([mk(s.span_id, s.parent_id, s.start_ms, s.duration_ms)
                                     for s in spans])["lanes"]  # fmt: skip
        assert len(tree_lanes) == 4

    def test_same_ids_in_two_traces_stay_apart(self) -> None:
        """Spans are keyed by (trace, id): a link resolves inside its own trace."""
        spans = [mk(1, None, 0, 10, trace="A"), mk(1, None, 0, 10, trace="B"),
                 mk(2, None, 1, 1, trace="B", links=[SpanLink("B", "1", {"relation": "x"})])]
        data = viewer_payload(spans)
        assert [t["id"] for t in data["traces"]] == ["A", "B"]
        assert data["links"] == [[1, 2, "x"]]

    def test_usage_totals_count_linked_work_once(self) -> None:
        """The subtree totals shipped to the page are causal_tree's once-only totals."""
        link = SpanLink("t", "2", {"relation": "branch_of"})
        spans = [mk(1, None, 0, 100, kind="pipeline"), mk(2, 1, 0, 50, kind="parallel"),
                 mk(3, None, 0, 50, kind="spawn", links=[link]),
                 mk(4, 3, 0, 10, kind="llm_call", input_tokens=7, output_tokens=3, cost_usd=0.5)]
        data = viewer_payload(spans)
        assert data["usage"]["0"] == [1, 7, 3, 0.5]
        assert data["usage"]["1"] == [1, 7, 3, 0.5]
        assert data["traces"][0]["usage"] == [1, 7, 3, 0.5]

    def test_queue_wait_and_errors_reach_the_page(self) -> None:
        """queue_wait_ms becomes the wait bar; status=error marks the span."""
        spans = [mk(1, None, 0, 10, queue_wait_ms=4.5, status="error")]
        detail = viewer_payload(spans)["detail"]["0"]
        assert detail["wait_ns"] == 4_500_000
        assert detail["error"] is True


class TestSafety:
    def test_hostile_metadata_is_plain_json(self) -> None:
        """NaN, cycles, bytes, sets, surrogates and objects all encode; JSON stays strict."""
        loop: list[Any] = []
        loop.append(loop)

        class Boom:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

        spans = [mk(1, None, 0, 1, nan=math.nan, loop=loop, raw=b"\xff", tags={2, 1},
                    bad="\udcff", boom=Boom(), big=10**30)]  # fmt: skip
        text = viewer_json(spans)
        meta = json.loads(text)["detail"]["0"]["meta"]
        assert meta["nan"] == "nan"
        assert meta["loop"] == ["<cycle>"]
        assert meta["tags"] == [1, 2]
        assert meta["bad"] == "\udcff"
        assert meta["boom"] == "<unprintable Boom>"
        assert meta["big"] == 10**30

    def test_script_end_tag_in_names_cannot_break_out(self) -> None:
        """A span named </script> is escaped inside the data element."""
        page = html_page([mk(1, None, 0, 1, name="</script><script>alert(1)</script>")])
        assert page.count("</script>") == 2  # the data element's and the code's own
        assert payload_of(page)["names"] == ["</script><script>alert(1)</script>"]

    def test_page_loads_nothing(self) -> None:
        """No src/href attributes and a CSP that forbids every fetch."""
        page = html_page([mk(1, None, 0, 1)])
        assert not re.search(r"\s(src|href)=", page)
        assert "default-src 'none'" in page

    def test_safe_value_depth_is_bounded(self) -> None:
        """Very deep nesting is cut instead of recursing without end."""
        value: Any = 0
        for _ in range(100):
            value = [value]
        flat = json.dumps(safe_value(value))
        assert "<too deep>" in flat


class TestCli:
    def test_view_writes_beside_the_trace(self, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
        """`view t.jsonl` writes t.html with every span of the trace in its data."""
        trace = tmp_path / "t.jsonl"
        assert main(["run", str(REPO / "examples/agent.harn"), *MOCK, "--jsonl", str(trace)]) == 0
        capsys.readouterr()
        assert main(["view", str(trace)]) == 0
        out = capsys.readouterr().out
        page = (tmp_path / "t.html").read_text(encoding="utf-8")
        data = payload_of(page)
        assert out.startswith(f"wrote {tmp_path / 't.html'} (33 spans)")
        assert data["count"] == 33
        assert len(data["links"]) == 5

    def test_run_html_flag(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`run --html` writes the same page as `view` of the run's JSONL."""
        html, jsonl = tmp_path / "a.html", tmp_path / "a.jsonl"
        args = ["run", str(REPO / "examples/agent.harn"), *MOCK]
        assert main([*args, "--html", str(html), "--jsonl", str(jsonl)]) == 0
        assert main(["view", str(jsonl), "-o", str(tmp_path / "b.html")]) == 0
        a, b = payload_of(html.read_text()), payload_of((tmp_path / "b.html").read_text())
        assert a["span"] == b["span"]
        assert a["links"] == b["links"]

    @pytest.mark.parametrize(
        ("content", "message"),
        [("{not json\n", "t.jsonl:1: invalid JSON"), ('{"span_id": 1}\n', "missing key")],
    )
    def test_bad_trace_is_one_error_line(self, tmp_path: Path, content: str, message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
        """A malformed trace file is one `error:` line naming file:line, exit 1."""
        trace = tmp_path / "t.jsonl"
        trace.write_text(content)
        assert main(["view", str(trace)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ")
        assert message in err
        assert err.count("\n") == 1

    def test_unwritable_output(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An output path that cannot be written is a clear error, exit 1."""
        trace = tmp_path / "t.jsonl"
        trace.write_text("")
        assert main(["view", str(trace), "-o", str(tmp_path / "no" / "x.html")]) == 1
        assert "error: cannot write" in capsys.readouterr().err

    def test_write_html_returns_span_count(self, tmp_path: Path) -> None:
        """write_html writes a file and returns how many spans it holds."""
        assert write_html([mk(1, None, 0, 1), mk(2, 1, 0, 1)], tmp_path / "x.html") == 2
        assert payload_of((tmp_path / "x.html").read_text())["title"] == "x.html"


@pytest.mark.parametrize("module", ["export.html", "export._viewer.data", "cli._view"])
def test_docstring_examples(module: str) -> None:
    """The modules' docstring examples run and give what they show."""
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"harn_async_trace.{module}"))
    assert result.attempted > 0
    assert result.failed == 0
