"""The CLI helpers on their own: flags, streaming and post-run writing."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from export_trace_builders import rich_trace

from harn_async_trace import SpanCollector
from harn_async_trace.cli._exports import (
    add_export_arguments,
    stream_exports,
    write_exports,
)
from harn_async_trace.export import read_jsonl


def test_flags_added_and_existing_ones_kept() -> None:
    """All five flags parse to PATH values; a flag the parser already has is not redefined."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--chrome", dest="chrome", help="the VM's own")
    add_export_arguments(parser)
    args = parser.parse_args(
        ["--jsonl", "a", "--json", "b", "--profile-json", "c", "--chrome", "d", "--otlp", "e"]
    )
    assert (args.jsonl, args.json, args.profile_json, args.chrome, args.otlp) == tuple("abcde")
    assert parser.parse_args([]).jsonl is None


def test_write_exports_writes_each_requested_file(tmp_path: Path) -> None:
    """write_exports writes exactly the requested files, JSONL included when not streamed."""
    _, spans = rich_trace()
    args = argparse.Namespace(jsonl=str(tmp_path / "t.jsonl"), chrome=str(tmp_path / "c.json"))
    assert write_exports(args, spans) == 0
    assert list(read_jsonl(tmp_path / "t.jsonl")) == spans
    assert json.loads((tmp_path / "c.json").read_text())["traceEvents"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "t.jsonl"]


def test_streamed_jsonl_is_not_rewritten(tmp_path: Path) -> None:
    """After stream_exports wrote --jsonl live, write_exports leaves the file alone."""
    path = tmp_path / "t.jsonl"
    args = argparse.Namespace(jsonl=str(path))
    c = SpanCollector()
    with stream_exports(args, collector=c) as writer:
        assert writer is not None
        c.end(c.start("step", "live"))
        c.reset()  # a new trace id: the filter follows the collector
        c.end(c.start("step", "after reset"))
        SpanCollector().end(SpanCollector().start("step", "other collector"))
    assert write_exports(args, []) == 0
    assert [s.name for s in read_jsonl(path)] == ["live", "after reset"]


def test_unwritable_stream_path_reports_and_continues(tmp_path: Path) -> None:
    """A --jsonl path that cannot be opened prints one error and yields None."""
    err = io.StringIO()
    args = argparse.Namespace(jsonl=str(tmp_path / "missing" / "t.jsonl"))
    with stream_exports(args, stderr=err) as writer:
        assert writer is None
    assert err.getvalue().startswith("error: cannot write ")
    assert write_exports(args, [], stderr=err) == 1


def test_an_exporter_that_breaks_does_not_cost_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exporter raising a non-OSError is one error line; the files after it are written."""
    from harn_async_trace.cli import _exports

    def broken(spans: object, target: object) -> int:
        raise RuntimeError("exporter bug")

    table = tuple(
        (flag, dest, text, broken if dest == "json" else writer)
        for flag, dest, text, writer in _exports._EXPORTS
    )
    monkeypatch.setattr(_exports, "_EXPORTS", table)
    _, spans = rich_trace()
    args = argparse.Namespace(json=str(tmp_path / "t.json"), otlp=str(tmp_path / "t.otlp"))
    assert write_exports(args, spans) == 1
    assert "t.json: internal error: RuntimeError: exporter bug" in capsys.readouterr().err
    assert json.loads((tmp_path / "t.otlp").read_text())["resourceSpans"]
