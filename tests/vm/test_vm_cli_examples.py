"""The `harn-trace` CLI and the examples' traces, asserted as golden text.

Regenerate the goldens after an intended change with
`UPDATE_VM_GOLDENS=1 pytest tests/vm/test_vm_cli_examples.py`.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from harn_async_trace.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDENS = pathlib.Path(__file__).parent / "goldens"
MOCK = ["--mock-time", "1700000000000"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDENS / name
    if os.environ.get("UPDATE_VM_GOLDENS"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with UPDATE_VM_GOLDENS=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Span names carry paths as given on the command line; keep them relative.
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("example", ["agent", "concurrency", "mock_time"])
@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_example_trace_golden(
    capsys: pytest.CaptureFixture[str], example: str, uvloop: bool
) -> None:
    """Each example's output and span summary match the golden, on both loops."""
    flags = ["--uvloop"] if uvloop else []
    code, out, err = cli(capsys, "run", f"examples/{example}.harn", "--summary", *MOCK, *flags)
    assert (code, err) == (0, "")
    check_golden(f"{example}.txt", out)


def test_replay_is_byte_identical(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    """Two --mock-time runs write identical JSONL traces (ids, times, tree)."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for target in (a, b):
        code, _, _ = cli(capsys, "run", "examples/agent.harn", *MOCK, "--jsonl", str(target))
        assert code == 0
    assert a.read_bytes() == b.read_bytes()
    first = json.loads(a.read_text().splitlines()[0])
    assert first["trace_id"].startswith("trace_")


class TestCli:
    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help documents run's flags and exits 0."""
        with pytest.raises(SystemExit) as info:
            main(["run", "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        for flag in ("--trace", "--summary", "--profile-json", "--mock-time", "--uvloop"):
            assert flag in out

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the version."""
        with pytest.raises(SystemExit) as info:
            main(["--version"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith("harn-trace ")

    def test_unknown_flag_is_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Unknown flags print usage and exit 2."""
        with pytest.raises(SystemExit) as info:
            main(["run", "examples/agent.harn", "--nope"])
        assert info.value.code == 2
        assert "usage:" in capsys.readouterr().err

    def test_missing_file(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing program is a clear error with exit 1."""
        assert cli(capsys, "run", "no/such.harn") == (1, "", "error: no/such.harn: no such file\n")

    def test_syntax_error(self, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """Syntax errors name file:line:column and draw a caret."""
        bad = tmp_path / "bad.harn"
        bad.write_text("let x = 1\nlet y = (x +)\n")
        code, out, err = cli(capsys, "run", str(bad))
        assert (code, out) == (1, "")
        assert err == (
            f"error: unexpected ')'\n  --> {bad}:2:13\n  |\n2 | let y = (x +)\n  |             ^\n"
        )

    def test_runtime_error(
        self, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """Uncaught runtime errors go to stderr with file:line; output so far is kept."""
        bad = tmp_path / "boom.harn"
        bad.write_text('println("before")\nfn f() { throw "boom" }\nf()\n')
        code, out, err = cli(capsys, "run", str(bad))
        assert (code, out) == (1, "before\n")
        assert err.startswith(f"error: boom\n  --> {bad}:2:10\n")
        assert f"called from <module> at {bad}:3" in err

    def test_trace_prints_json_lines(
        self, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """--trace prints every span as a JSON line on stderr."""
        prog = tmp_path / "p.harn"
        prog.write_text("fn f() { 1 }\nf()\n")
        code, out, err = cli(capsys, "run", str(prog), "--trace", *MOCK)
        assert (code, out) == (0, "")
        kinds = [json.loads(line)["kind"] for line in err.splitlines()]
        assert kinds == ["fn_call", "pipeline"]

    def test_profile_json(self, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """--profile-json writes spans plus per-kind totals."""
        target = tmp_path / "profile.json"
        code, _, _ = cli(capsys, "run", "examples/agent.harn", *MOCK, "--profile-json", str(target))
        assert code == 0
        data = json.loads(target.read_text())
        assert {"spans", "kinds"} <= set(data)
        assert data["kinds"]["llm_call"]["count"] == 9

    def test_jsonl_then_summary_command(
        self, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """`summary TRACE.jsonl` prints the same tree as `run --summary`."""
        target = tmp_path / "t.jsonl"
        code, _, _ = cli(capsys, "run", "examples/concurrency.harn", *MOCK, "--jsonl", str(target))
        assert code == 0
        code, out, _ = cli(capsys, "summary", str(target))
        assert code == 0
        golden = (GOLDENS / "concurrency.txt").read_text(encoding="utf-8")
        assert out == golden[golden.index("Trace trace_") :]
