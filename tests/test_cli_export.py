"""`harn-trace run ... --jsonl/--json/--profile-json/--chrome/--otlp` and `harn-trace summary`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_export_chrome import validate_trace_event_file

from harn_async_trace.cli import main
from harn_async_trace.export import read_jsonl, span_from_dict

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.harn") if p.stem != "agent_tools")
MOCK = "1700000000000"


def _run_with_exports(
    example: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    paths = {
        "jsonl": out / "t.jsonl",
        "json": out / "t.json",
        "profile": out / "t.profile.json",
        "chrome": out / "t.chrome.json",
        "otlp": out / "t.otlp.json",
    }
    status = main([
        "run", str(example), "--mock-time", MOCK, "--summary",
        "--jsonl", str(paths["jsonl"]), "--json", str(paths["json"]),
        "--profile-json", str(paths["profile"]), "--chrome", str(paths["chrome"]),
        "--otlp", str(paths["otlp"]), *extra,
    ])  # fmt: skip
    captured = capsys.readouterr()
    return {"status": status, "out": captured.out, "err": captured.err, **paths}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_export_of_an_example(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each example writes all five files; they agree with each other and validate."""
    run = _run_with_exports(example, tmp_path, capsys)
    assert run["status"] == 0, run["err"]
    streamed = list(read_jsonl(run["jsonl"]))
    assert streamed
    as_json = [span_from_dict(d) for d in json.loads(run["json"].read_text())]
    # Streamed (end order) and post-run files hold the same spans.
    assert sorted(streamed, key=lambda s: s.span_id) == sorted(as_json, key=lambda s: s.span_id)
    profile = json.loads(run["profile"].read_text())
    assert profile["span_count"] == len(streamed)
    assert sum(row["count"] for row in profile["kinds"].values()) == len(streamed)
    chrome = json.loads(run["chrome"].read_text())
    found = validate_trace_event_file(chrome)
    assert sum(len(items) for items in found["slices"].values()) == len(streamed)
    assert len(found["flows"]) == sum(len(s.links) for s in streamed)
    otlp = json.loads(run["otlp"].read_text())
    assert len(otlp["resourceSpans"][0]["scopeSpans"][0]["spans"]) == len(streamed)


def test_agent_profile_and_otlp_carry_llm_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent demo's LLM tokens/cost add up in the profile and show as gen_ai.* in OTLP."""
    run = _run_with_exports(REPO / "examples" / "agent.harn", tmp_path, capsys)
    assert run["status"] == 0, run["err"]
    spans = list(read_jsonl(run["jsonl"]))
    llm = [s for s in spans if s.kind.value == "llm_call"]
    assert llm
    profile = json.loads(run["profile"].read_text())
    assert profile["llm"]["calls"] == len(llm)
    assert profile["llm"]["input_tokens"] == sum(s.metadata["input_tokens"] for s in llm)
    assert profile["llm"]["cost_usd"] == pytest.approx(
        sum(s.metadata.get("cost_usd", 0) for s in llm)
    )
    otlp = json.loads(run["otlp"].read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    chats = [s for s in otlp if any(
        a["key"] == "gen_ai.operation.name" and a["value"] == {"stringValue": "chat"}
        for a in s["attributes"]
    )]  # fmt: skip
    assert len(chats) == len(llm)
    assert all(s["kind"] == 3 for s in chats)


def test_mock_time_exports_are_reproducible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under --mock-time two runs write byte-identical JSONL, Chrome and OTLP files."""
    example = REPO / "examples" / "concurrency.harn"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _run_with_exports(example, tmp_path / "a", capsys)
    second = _run_with_exports(example, tmp_path / "b", capsys)
    for key in ("jsonl", "chrome", "otlp", "profile"):
        assert first[key].read_bytes() == second[key].read_bytes(), key


def test_summary_of_saved_trace_matches_run_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harn-trace summary t.jsonl` prints the same tree as `run --summary`."""
    run = _run_with_exports(REPO / "examples" / "concurrency.harn", tmp_path, capsys)
    tree = run["out"][run["out"].index("Trace trace_"):]
    assert main(["summary", str(run["jsonl"])]) == 0
    printed = capsys.readouterr().out
    # The saved file is in end order, the run's list too: the same tree.
    assert printed == tree


def test_failing_program_still_streams_ended_spans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A program that dies with a runtime error exits 1 and its JSONL holds every ended span."""
    program = tmp_path / "fail.harn"
    program.write_text(
        'fn work(i) { sleep(1ms)\n return i }\n'
        'pipeline default() {\n  work(1)\n  work(2)\n  throw "boom"\n}\n'
    )
    trace = tmp_path / "fail.jsonl"
    assert main(["run", str(program), "--mock-time", MOCK, "--jsonl", str(trace)]) == 1
    assert "boom" in capsys.readouterr().err
    names = [s.name for s in read_jsonl(trace)]
    assert names.count("work") == 2


class TestSummaryErrors:
    def test_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing trace file is one clear error line and exit status 1."""
        missing = tmp_path / "none.jsonl"
        assert main(["summary", str(missing)]) == 1
        assert capsys.readouterr().err == f"error: {missing}: no such file\n"

    def test_malformed_line(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad line is reported as file:line with the reason."""
        bad = tmp_path / "bad.jsonl"
        good = ('{"trace_id":"t","span_id":1,"parent_id":null,"kind":"step","name":"a",'
                '"start_ms":0,"start_unix_ms":0,"duration_ms":1}')
        bad.write_text(good + "\n" + good.replace('"name":"a",', "") + "\n")
        assert main(["summary", str(bad)]) == 1
        assert capsys.readouterr().err == f"error: {bad}:2: missing key 'name'\n"

    def test_binary_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A non-UTF-8 file is an error line, not a traceback."""
        blob = tmp_path / "blob.jsonl"
        blob.write_bytes(b"\xff\xfe\x00garbage")
        assert main(["summary", str(blob)]) == 1
        assert "not a UTF-8 text file" in capsys.readouterr().err

    def test_empty_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An empty trace prints the seed's empty message."""
        empty = tmp_path / "empty.jsonl"
        empty.write_text("")
        assert main(["summary", str(empty)]) == 0
        assert capsys.readouterr().out == "No spans recorded.\n"


def test_unwritable_export_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An export path in a missing directory fails with exit 1 and names the path."""
    target = tmp_path / "no" / "such" / "dir" / "t.json"
    status = main(["run", str(REPO / "examples" / "mock_time.harn"), "--mock-time", MOCK,
                   "--chrome", str(target)])
    assert status == 1
    assert f"error: cannot write {target}" in capsys.readouterr().err


def test_unwritable_jsonl_stream_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --jsonl stream that cannot open is reported once, the run still exits 1."""
    target = tmp_path / "missing" / "t.jsonl"
    status = main(["run", str(REPO / "examples" / "mock_time.harn"), "--mock-time", MOCK,
                   "--jsonl", str(target)])
    assert status == 1
    assert capsys.readouterr().err.count(f"error: cannot write {target}") == 1


def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The installed `harn-trace` runs a program to JSONL, then summarises the file."""
    exe = Path(sys.executable).with_name("harn-trace")
    trace = tmp_path / "t.jsonl"
    subprocess.run(
        [str(exe), "run", "examples/mock_time.harn", "--mock-time", MOCK, "--jsonl", str(trace)],
        cwd=REPO, check=True, capture_output=True, timeout=120,
    )
    result = subprocess.run(
        [str(exe), "summary", str(trace)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    head = result.stdout.splitlines()[0]
    assert head.startswith("Trace trace_")
    assert head.endswith(f": {len(list(read_jsonl(trace)))} spans, 7201750ms elapsed")
