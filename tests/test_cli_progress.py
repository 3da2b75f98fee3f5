"""Live progress (cli/_progress.py): --trace lines as spans end, the terminal status line."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

from harn_async_trace import SpanCollector, SpanKind
from harn_async_trace.cli import main
from harn_async_trace.cli._progress import LiveProgress

MOCK = ["--mock-time", "1700000000000"]
ERASE = "\r\x1b[2K"
STATUS = re.compile(r"\r\x1b\[2K\d+\.\ds  \d+ open  \d+ finished[^\r\n]*?(?=\r|\n|$)")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def program(tmp_path: Path, source: str) -> str:
    path = tmp_path / "p.harn"
    path.write_text(source, encoding="utf-8")
    return str(path)


def run(argv: list[str], out: io.StringIO, err: io.StringIO) -> int:
    import sys

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        return main(argv)
    finally:
        sys.stdout, sys.stderr = saved


class TestTraceLines:
    def test_each_span_is_printed_when_it_ends(self, tmp_path: Path) -> None:
        """The fn_call line comes before the output printed after the call, the pipeline's after."""
        both = io.StringIO()  # stdout and stderr interleaved, in write order
        path = program(tmp_path, 'fn f() { 1 }\nf()\nprintln("after f")\n')
        assert run(["run", path, "--trace", *MOCK], both, both) == 0
        lines = both.getvalue().splitlines()
        assert [json.loads(line)["kind"] if line.startswith("{") else line for line in lines] == [
            "fn_call", "after f", "pipeline",
        ]  # fmt: skip
        assert "\x1b" not in both.getvalue()  # not a terminal: no status line

    def test_line_format_is_unchanged(self, tmp_path: Path) -> None:
        """Lines are span_to_dict with sorted keys, as before streaming."""
        err = io.StringIO()
        assert run(["run", program(tmp_path, "fn f() { 1 }\nf()\n"), "--trace", *MOCK],
                   io.StringIO(), err) == 0  # fmt: skip
        first = err.getvalue().splitlines()[0]
        data = json.loads(first)
        assert list(data) == sorted(data)
        assert data["name"] == "f"


class TestStatusLine:
    SOURCE = 'fn work(i) {\n  llm_call("item ${i}")\n  println("done ${i}")\n}\n' \
             "for i in range(0, 4) { work(i) }\n"

    def test_terminal_gets_a_status_that_is_gone_at_the_end(self, tmp_path: Path) -> None:
        """On a terminal the status is drawn below the output and erased when the run ends."""
        out = Terminal()
        assert run(["run", program(tmp_path, self.SOURCE), "--summary", *MOCK], out,
                   io.StringIO()) == 0  # fmt: skip
        text = out.getvalue()
        statuses = STATUS.findall(text)
        full = r"\r\x1b\[2K\d+\.\ds  \d+ open  \d+ finished  \d+ tokens  \$[\d.]+"
        assert any(re.fullmatch(full, s) for s in statuses), statuses
        program_output = STATUS.sub("", text).replace(ERASE, "")
        assert program_output.startswith("done 0\ndone 1\ndone 2\ndone 3\n")
        before_summary = text[: text.index("Trace ")]
        assert before_summary.endswith(ERASE + "\x1b[1m")  # erased before the summary is printed

    def test_not_traced_means_no_status(self, tmp_path: Path) -> None:
        """Without tracing there is nothing to count, so no status even on a terminal."""
        out = Terminal()
        assert run(["run", program(tmp_path, self.SOURCE), *MOCK], out, io.StringIO()) == 0
        assert out.getvalue() == "done 0\ndone 1\ndone 2\ndone 3\n"

    def test_runtime_error_is_not_glued_to_the_status(self, tmp_path: Path) -> None:
        """The error report erases the status line first."""
        shared = Terminal()
        path = program(tmp_path, 'println("x")\nthrow "boom"\n')
        assert run(["run", path, "--summary", *MOCK], shared, shared) == 1
        text = shared.getvalue()
        assert ERASE + "error: boom" in text


class TestCounts:
    def test_counts_open_finished_tokens_cost(self) -> None:
        """Starts and ends of the run's collector are counted; its tokens and cost summed."""
        collector, other = SpanCollector(), SpanCollector()
        with LiveProgress(collector, trace=None, terminal=None) as live:
            root = collector.start(SpanKind.PIPELINE, "p")
            llm = collector.start(SpanKind.LLM_CALL, "m")
            other.end(other.start(SpanKind.STEP, "elsewhere"))
            assert (live.open, live.finished) == (2, 0)
            collector.set_metadata(llm, "input_tokens", 5)
            collector.set_metadata(llm, "output_tokens", 2)
            collector.set_metadata(llm, "cost_usd", 0.5)
            collector.end(llm)
            assert live.status_text().endswith("1 open  1 finished  7 tokens  $0.5")
            collector.end(root)
        assert (live.open, live.finished, live.tokens) == (0, 2, 7)

    def test_spans_of_a_new_trace_are_the_runs_too(self) -> None:
        """A span opened with new_trace belongs to the run's collector: counted and printed."""
        collector = SpanCollector()
        trace = io.StringIO()
        with LiveProgress(collector, trace=trace, terminal=None) as live:
            request = collector.open(SpanKind.STEP, "request", new_trace=True)
            assert live.open == 1
            collector.end(request)
        assert live.finished == 1
        assert '"name": "request"' in trace.getvalue()

    def test_many_threads_ending_spans(self) -> None:
        """Spans ended from 8 threads at once are all counted, none twice."""
        collector = SpanCollector()
        trace = io.StringIO()
        with LiveProgress(collector, trace=trace, terminal=Terminal()) as live:
            def work() -> None:
                for _ in range(250):
                    collector.end(collector.start_detached_with_links(SpanKind.STEP, "s", []))

            threads = [threading.Thread(target=work) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert (live.open, live.finished) == (0, 2_000)
        assert len(trace.getvalue().splitlines()) == 2_000

    def test_close_is_idempotent_and_unsubscribes(self) -> None:
        """After close, new spans are not counted; closing twice is harmless."""
        collector = SpanCollector()
        live = LiveProgress(collector, trace=None, terminal=None)
        live.close()
        live.close()
        collector.end(collector.start(SpanKind.STEP, "late"))
        assert live.finished == 0
