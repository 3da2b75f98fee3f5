"""`harn-trace` at its edges: work never awaited, Ctrl-C, a full disk, bad flags and bad files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import restore_sigint
from cli_support import run_cli as _cli

from harn_async_trace.cli import main
from harn_async_trace.export import read_jsonl

REPO = Path(__file__).resolve().parents[1]
LOOPS = pytest.mark.parametrize(
    "flags", [[], ["--uvloop"], ["--mock-time", "0"]], ids=["asyncio", "uvloop", "mock-time"]
)
FORGOTTEN = """\
fn inner() {
  sleep(3600000)
}
fn bg() {
  inner()
}
pipeline default(task) {
  spawn { bg() }
  sleep(1)
  println("main done")
}
"""


def _outputs(tmp_path: Path) -> dict[str, Path]:
    return {flag: tmp_path / f"t.{flag.strip('-')}" for flag in
            ("--jsonl", "--json", "--profile-json", "--chrome", "--otlp")}  # fmt: skip


def _output_flags(paths: dict[str, Path]) -> list[str]:
    return [part for flag, path in paths.items() for part in (flag, str(path))]


def _spans_by_output(paths: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """The span records each output holds, as plain dicts keyed by output flag."""
    found: dict[str, list[dict[str, Any]]] = {}
    found["--jsonl"] = [json.loads(line) for line in paths["--jsonl"].read_text().splitlines()]
    found["--json"] = json.loads(paths["--json"].read_text())
    found["--profile-json"] = json.loads(paths["--profile-json"].read_text())["spans"]
    chrome = json.loads(paths["--chrome"].read_text())["traceEvents"]
    found["--chrome"] = [
        {"name": e["name"], "span_id": e["args"]["span_id"], **e["args"]}
        for e in chrome if e["ph"] == "X"
    ]
    otlp = json.loads(paths["--otlp"].read_text())
    # OTel output names pipelines by the GenAI convention and puts harn keys under harn.
    found["--otlp"] = [
        {"name": s["name"].removeprefix("invoke_workflow "),
         "metadata": {a["key"].removeprefix("harn."): a["value"] for a in s["attributes"]}}
        for s in otlp["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ]
    return found


class TestWorkNeverAwaited:
    @LOOPS
    def test_forgotten_spawn_is_in_every_output_as_cancelled(
        self, flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A spawned task still running at the end is cancelled first; its spans are everywhere."""
        program = tmp_path / "forgotten.harn"
        program.write_text(FORGOTTEN)
        paths = _outputs(tmp_path)
        code, out, err = _cli(
            ["run", str(program), "--summary", *flags, *_output_flags(paths)], capsys
        )
        assert code == 0, err
        assert out.startswith("main done\nTrace trace_")
        assert ": 4 spans, " in out.splitlines()[1]
        assert "fn_call inner" in out
        assert err == "note: 3 spans were still open when the program ended; closed as cancelled\n"
        for flag, records in _spans_by_output(paths).items():
            names = sorted(r["name"] for r in records)
            assert names == ["bg", "default", "inner", "spawn@forgotten.harn:8"], flag
        for record in _spans_by_output(paths)["--json"]:
            if record["name"] != "default":
                assert record["metadata"]["cancelled"] is True, record

    def test_span_left_open_by_the_program_is_closed(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """trace_start without trace_end: the CLI closes it and says so."""
        program = tmp_path / "open.harn"
        program.write_text('pipeline default(task) {\n  let t = trace_start("left open")\n}\n')
        code, out, err = _cli(["run", str(program), "--mock-time", "0", "--summary"], capsys)
        assert code == 0
        assert "user_timing left open 0ms (cancelled=true)" in out
        assert err == "note: 1 span was still open when the program ended; closed as cancelled\n"


SIGINT_PROGRAM = """\
fn bg() {
  while true {
    sleep(5)
  }
}
pipeline default(task) {
  spawn { bg() }
  println("ready")
  while true {
    sleep(5)
  }
}
"""


class TestCtrlC:
    @LOOPS
    def test_sigint_closes_everything_writes_everything_exits_130(
        self, flags: list[str], tmp_path: Path
    ) -> None:
        """Ctrl-C: one line `interrupted`, every span cancelled, every output written, 130."""
        program = tmp_path / "forever.harn"
        program.write_text(SIGINT_PROGRAM)
        paths = _outputs(tmp_path)
        command = [sys.executable, "-m", "harn_async_trace.cli", "run", str(program),
                   "--summary", *flags, *_output_flags(paths)]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=restore_sigint,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            time.sleep(0.3)  # let both loops get going
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert (proc.returncode, err) == (130, "interrupted\n")
        assert ": 3 spans, " in out.splitlines()[0]
        for flag, records in _spans_by_output(paths).items():
            names = sorted(r["name"] for r in records)
            assert names == ["bg", "default", "spawn@forever.harn:7"], flag
        for record in _spans_by_output(paths)["--json"]:
            assert record["metadata"]["cancelled"] is True, record


class TestDiskFull:
    def test_full_disk_stream_does_not_lose_the_other_outputs(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--jsonl /dev/full: one error line naming the file and errno; summary and json kept."""
        program = tmp_path / "ok.harn"
        program.write_text('fn f() {\n  sleep(1)\n}\npipeline default(task) {\n  f()\n}\n')
        ok = tmp_path / "ok.json"
        code, out, err = _cli(["run", str(program), "--mock-time", "0", "--jsonl", "/dev/full",
                               "--json", str(ok), "--summary"], capsys)  # fmt: skip
        assert code == 1
        assert err == "error: cannot write /dev/full: No space left on device (errno 28, ENOSPC)\n"
        assert ": 2 spans, " in out.splitlines()[0]
        assert [s["name"] for s in json.loads(ok.read_text())] == ["f", "default"]

    def test_full_disk_for_a_file_written_at_the_end(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--chrome /dev/full fails alone; the JSONL stream and --otlp are complete."""
        program = tmp_path / "ok.harn"
        program.write_text('pipeline default(task) {\n  sleep(1)\n}\n')
        jsonl, otlp = tmp_path / "t.jsonl", tmp_path / "t.otlp"
        code, _out, err = _cli(["run", str(program), "--mock-time", "0", "--chrome", "/dev/full",
                                "--jsonl", str(jsonl), "--otlp", str(otlp)], capsys)  # fmt: skip
        assert code == 1
        assert err == "error: cannot write /dev/full: No space left on device (errno 28, ENOSPC)\n"
        assert len(list(read_jsonl(jsonl))) == 1
        assert json.loads(otlp.read_text())["resourceSpans"]


class TestUsage:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--mock-time", "-5"], "argument --mock-time: must be a whole number of ms >= 0"),
            (["--mock-time", "1e3"], "argument --mock-time: must be a whole number of ms >= 0"),
            (["--mock-time", "9" * 30], "argument --mock-time: too large"),
            (["--jsonl", ""], "argument --jsonl: the path is empty"),
            (["--json", "{d}/a.json", "--chrome", "{d}/a.json"],
             "argument --chrome: the same file as --json"),
            (["--otlp", "{d}/ok.harn"], "argument --otlp: {d}/ok.harn is the program itself"),
        ],
        ids=["negative", "not an int", "huge", "empty path", "same path twice", "program path"],
    )
    def test_bad_flag_value_is_a_usage_error_naming_the_flag(
        self, args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each bad value exits 2 with argparse's message naming the flag; no traceback."""
        (tmp_path / "ok.harn").write_text('pipeline default(task) {\n  println("x")\n}\n')
        d = str(tmp_path)
        code, out, err = _cli(["run", f"{d}/ok.harn", *[a.format(d=d) for a in args]], capsys)
        assert code == 2
        assert message.format(d=d) in err
        assert "Traceback" not in err
        assert out == ""
        assert (tmp_path / "ok.harn").read_text().startswith("pipeline")


GOOD = ('{"trace_id":"t","span_id":1,"parent_id":null,"kind":"step","name":"a",'
        '"start_ms":0,"start_unix_ms":0,"duration_ms":1}')  # fmt: skip


class TestBadTraceFiles:
    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (GOOD.replace('"duration_ms":1', '"duration_ms":1,"duration_ns":"x"'),
             "duration_ns must be an integer, got str x"),
            (GOOD.replace('"span_id":1', '"span_id":1e999'),
             "span_id must be an integer from 0 to 2**64-1, got float inf"),
            (GOOD.replace('"span_id":1', '"span_id":' + "7" * 5000),
             "invalid JSON: a number has more than 4,300 digits"),
            ("[" * 100_000 + "]" * 100_000, "invalid JSON: nested too deeply to read"),
            (GOOD.replace('"span_id":1', '"span_id":-3'),
             "span_id must be an integer from 0 to 2**64-1, got int -3"),
        ],
        ids=["duration_ns string", "span_id 1e999", "5000-digit id", "deep brackets", "negative"],
    )
    def test_malformed_line_is_file_line_what(
        self, line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each malformed line: `error: file:line: what is wrong`, exit 1, no traceback."""
        trace = tmp_path / "bad.jsonl"
        trace.write_text(GOOD + "\n\n" + line + "\n")
        code, out, err = _cli(["summary", str(trace)], capsys)
        assert (code, out) == (1, "")
        assert err == f"error: {trace}:3: {message}\n"

    def test_json_array_file_is_read(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`summary` on a --json array prints the same tree as on the JSONL of the same run."""
        program = tmp_path / "p.harn"
        program.write_text('fn f() {\n  sleep(2)\n}\npipeline default(task) {\n  f()\n  f()\n}\n')
        jsonl, array = tmp_path / "t.jsonl", tmp_path / "t.json"
        assert main(["run", str(program), "--mock-time", "0", "--jsonl", str(jsonl),
                     "--json", str(array)]) == 0  # fmt: skip
        capsys.readouterr()
        from_array = _cli(["summary", str(array)], capsys)
        assert from_array[:2] == _cli(["summary", str(jsonl)], capsys)[:2]
        code, out, _ = _cli(["summary", str(array)], capsys)
        assert code == 0
        assert out.splitlines()[0].endswith(": 3 spans, 4ms elapsed")

    def test_bad_element_of_an_array_names_its_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """In an array file, a bad span is reported at the line it starts on."""
        trace = tmp_path / "t.json"
        trace.write_text("[\n" + GOOD + ",\n" + GOOD.replace('"name":"a"', '"name":7') + "\n]\n")
        code, _, err = _cli(["summary", str(trace)], capsys)
        assert (code, err) == (1, f"error: {trace}:3: name must be a string, got int 7\n")


def _line(trace: str, span_id: int, parent: int | None, name: str) -> str:
    parent_text = "null" if parent is None else str(parent)
    return (
        f'{{"trace_id":"{trace}","span_id":{span_id},"parent_id":{parent_text},'
        f'"kind":"fn_call","name":"{name}","start_ms":0,"start_unix_ms":0,"duration_ms":1}}'
    )


def _summary_subprocess(trace: Path) -> subprocess.CompletedProcess[str]:
    # A subprocess with a timeout: before the fix these inputs hung forever.
    return subprocess.run(
        [sys.executable, "-m", "harn_async_trace.cli", "summary", str(trace)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


class TestTreesThatHung:
    def test_two_traces_reusing_ids_print_linearly(self, tmp_path: Path) -> None:
        """54 lines: two 27-deep recursions in traces that reuse ids (tracing re-enabled)."""
        trace = tmp_path / "reenabled.jsonl"
        lines = [_line(t, i, None if i == 1 else i - 1, f"f{i}")
                 for t in ("trace_a", "trace_b") for i in range(1, 28)]  # fmt: skip
        trace.write_text("\n".join(lines) + "\n")
        result = _summary_subprocess(trace)
        assert (result.returncode, result.stderr) == (0, "")
        printed = result.stdout.splitlines()
        # Per trace: a header, a blank line, 27 spans; a blank line between traces.
        assert printed[0] == "Trace trace_a: 27 spans, 1ms elapsed"
        assert printed[30] == "Trace trace_b: 27 spans, 1ms elapsed"
        assert len(printed) == 2 * (2 + 27) + 1
        assert printed[-1] == "  " * 26 + "fn_call f27 1ms"

    def test_duplicate_id_that_is_its_own_parent(self, tmp_path: Path) -> None:
        """Two spans with one id, one naming the other as parent: printed once each."""
        trace = tmp_path / "dup.jsonl"
        trace.write_text(_line("t", 1, None, "a") + "\n" + _line("t", 1, 1, "b") + "\n")
        result = _summary_subprocess(trace)
        assert result.returncode == 0
        assert result.stdout.splitlines()[2:] == ["fn_call a 1ms", "  fn_call b 1ms"]


class TestTerminalSafety:
    def _trace_with(self, tmp_path: Path, name: str) -> Path:
        trace = tmp_path / "t.jsonl"
        trace.write_text(GOOD.replace('"name":"a"', f'"name":{name}') + "\n")
        return trace

    def test_lone_surrogate_on_a_strict_utf8_stdout(self, tmp_path: Path) -> None:
        """`summary` prints a lone surrogate (a \\udcff escape in the file) as text, no crash."""
        trace = self._trace_with(tmp_path, '"bad \\udcff name"')
        env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
        result = subprocess.run(
            [sys.executable, "-m", "harn_async_trace.cli", "summary", str(trace)],
            capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        assert (result.returncode, result.stderr) == (0, b"")
        assert b"step bad \\udcff name 1ms" in result.stdout

    def test_escape_sequences_do_not_reach_the_terminal(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """ESC and other controls in a span name are shown as \\xHH, never sent raw."""
        trace = self._trace_with(tmp_path, '"\\u001b]0;pwned\\u0007\\u001b[2J\\r\\u009b"')
        code, out, _ = _cli(["summary", str(trace)], capsys)
        assert code == 0
        assert "step \\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b 1ms" in out
        assert not any(ch in out for ch in "\x1b\x07\r\x9b")

    def test_run_summary_and_trace_are_terminal_safe(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`run --summary --trace` with an ESC in a span name prints it as text on both streams."""
        program = tmp_path / "esc.harn"
        program.write_text(
            'pipeline default(task) {\n  let t = trace_start("\x1b[31mred\x7f")\n'
            "  trace_end(t)\n}\n"
        )
        code, out, err = _cli(["run", str(program), "--mock-time", "0", "--summary", "--trace"],
                              capsys)  # fmt: skip
        assert code == 0
        assert "user_timing \\x1b[31mred\\x7f 0ms" in out
        assert "\x1b" not in out + err
        assert "\x7f" not in out + err
        assert [json.loads(line)["name"] for line in err.splitlines()] == [
            "\x1b[31mred\x7f", "default"
        ]
