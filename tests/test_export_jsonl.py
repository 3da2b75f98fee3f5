"""JSON / JSONL export: exact round trip, live streaming, crash safety, reader errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from export_trace_builders import rich_trace

from harn_async_trace import MockClock, Span, SpanCollector, SpanEvent, SpanLink, install_override
from harn_async_trace.export import (
    JsonlStreamWriter,
    TraceFileError,
    read_jsonl,
    span_to_dict,
    write_json,
    write_jsonl,
)

REPO = Path(__file__).resolve().parents[1]


class TestRoundTrip:
    def test_jsonl_round_trip_gives_equal_spans(self, tmp_path: Path) -> None:
        """Every span (metadata, links, events, ns times) survives JSONL unchanged."""
        _, spans = rich_trace()
        path = tmp_path / "t.jsonl"
        assert write_jsonl(spans, path) == len(spans)
        back = list(read_jsonl(path))
        assert back == spans
        assert [s.start_ns for s in back] == [s.start_ns for s in spans]
        assert [s.duration_ns for s in back] == [s.duration_ns for s in spans]

    def test_round_trip_with_system_clock_and_odd_values(self, tmp_path: Path) -> None:
        """Real-clock ns times, unicode, nested and non-JSON metadata (as str) round-trip."""
        c = SpanCollector()
        sid = c.start("step", "naïve ✓")
        c.set_metadata(sid, "nested", {"z": [1, 2, {"y": None}], "a": "é"})
        c.set_metadata(sid, "path", Path("/x"))
        c.record_event(sid, "ev", {"k": "v"})
        c.end(sid)
        path = tmp_path / "t.jsonl"
        write_jsonl(c.spans(), path)
        (back,) = read_jsonl(path)
        original = c.spans()[0]
        assert back.name == "naïve ✓"
        assert back.metadata == {"nested": original.metadata["nested"], "path": "/x"}
        assert (back.start_ns, back.duration_ns) == (original.start_ns, original.duration_ns)
        assert back.start_unix_ms == original.start_unix_ms
        assert back.events == original.events

    def test_one_line_per_span_extending_span_to_dict(self) -> None:
        """A line is span_to_dict plus start_ns/duration_ns and the recorded lane, nothing else."""
        _, spans = rich_trace()
        buf = io.StringIO()
        write_jsonl(spans, buf)
        lines = buf.getvalue().splitlines()
        assert len(lines) == len(spans)
        for line, span in zip(lines, spans, strict=True):
            data = json.loads(line)
            assert data.pop("start_ns") == span.start_ns
            assert data.pop("duration_ns") == span.duration_ns
            assert data.pop("lane") == span.lane > 0
            assert data == json.loads(json.dumps(span_to_dict(span)))

    def test_lanes_survive_the_round_trip(self, tmp_path: Path) -> None:
        """Recorded lanes are written and read back, so a saved trace keeps its task rows."""
        _, spans = rich_trace()
        path = tmp_path / "t.jsonl"
        write_jsonl(spans, path)
        assert [s.lane for s in read_jsonl(path)] == [s.lane for s in spans]

    def test_write_json_is_one_array(self, tmp_path: Path) -> None:
        """write_json writes a JSON array of the same records."""
        _, spans = rich_trace()
        path = tmp_path / "t.json"
        write_json(spans, path)
        data = json.loads(path.read_text())
        assert [d["span_id"] for d in data] == [s.span_id for s in spans]

    def test_generator_input_is_streamed(self) -> None:
        """write_jsonl consumes a generator lazily: each span is written before the next is made."""
        buf = io.StringIO()
        seen_lines: list[int] = []

        def spans() -> Iterator[Span]:
            for i in range(5):
                seen_lines.append(buf.getvalue().count("\n"))
                yield Span(trace_id="t", span_id=i + 1, parent_id=None, kind="step",
                           name=f"s{i}", start_ms=i, start_unix_ms=i, duration_ms=1)

        assert write_jsonl(spans(), buf) == 5
        assert seen_lines == [0, 1, 2, 3, 4]


class TestStreaming:
    def test_lines_appear_as_spans_end(self, tmp_path: Path) -> None:
        """The file holds exactly the spans ended so far, readable mid-trace."""
        path = tmp_path / "live.jsonl"
        with install_override(MockClock()):
            c = SpanCollector()
            with JsonlStreamWriter(path) as writer:
                outer = c.start("pipeline", "main")
                inner = c.start("step", "a")
                assert path.read_text() == ""
                c.end(inner)
                assert [s.name for s in read_jsonl(path)] == ["a"]
                c.end(outer)
                assert [s.name for s in read_jsonl(path)] == ["a", "main"]
                assert writer.count == 2
            c.end(c.start("step", "after close"))
        assert list(read_jsonl(path)) == c.spans()[:2]

    def test_trace_filter(self, tmp_path: Path) -> None:
        """trace_id= keeps one collector's spans out of several."""
        path = tmp_path / "one.jsonl"
        mine, other = SpanCollector(), SpanCollector()
        with JsonlStreamWriter(path, trace_id=mine.trace_id):
            other.end(other.start("step", "other"))
            mine.end(mine.start("step", "mine"))
        assert [s.name for s in read_jsonl(path)] == ["mine"]

    def test_dropped_spans_are_still_written(self, tmp_path: Path) -> None:
        """The stream is the complete record even when the collector is full."""
        path = tmp_path / "full.jsonl"
        c = SpanCollector(max_spans=1)
        with JsonlStreamWriter(path):
            for i in range(3):
                c.end(c.start("step", f"s{i}"))
        assert [s.name for s in read_jsonl(path)] == ["s0", "s1", "s2"]
        assert c.dropped_spans == 2

    def test_crash_loses_nothing_already_ended(self, tmp_path: Path) -> None:
        """A process killed mid-trace (os._exit) leaves every ended span in the file."""
        path = tmp_path / "crash.jsonl"
        script = textwrap.dedent(
            f"""
            import os
            from harn_async_trace import SpanCollector
            from harn_async_trace.export import JsonlStreamWriter
            c = SpanCollector()
            JsonlStreamWriter({str(path)!r})
            root = c.start("pipeline", "main")
            for i in range(100):
                c.end(c.start("step", f"s{{i}}"))
            os._exit(3)  # no cleanup, no close, no flush at exit
            """
        )
        result = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=60)
        assert result.returncode == 3
        names = [s.name for s in read_jsonl(path)]
        assert names == [f"s{i}" for i in range(100)]


class TestReaderErrors:
    def _write(self, tmp_path: Path, text: str) -> Path:
        path = tmp_path / "bad.jsonl"
        path.write_text(text, encoding="utf-8")
        return path

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a TraceFileError naming it."""
        with pytest.raises(TraceFileError, match=r"nope\.jsonl: no such file"):
            list(read_jsonl(tmp_path / "nope.jsonl"))

    @pytest.mark.parametrize(
        ("text", "line", "message"),
        [
            ('{"trace_id": "t"\n', 1, "invalid JSON"),
            ("\n\n[1, 2]\n", 3, "expected a span object"),
            ('{"trace_id":"t","span_id":1}\n', 1, "missing key 'parent_id'"),
            (
                '{"trace_id":"t","span_id":1,"parent_id":null,"kind":"bogus","name":"a",'
                '"start_ms":0,"start_unix_ms":0,"duration_ms":0}\n',
                1,
                "kind",
            ),
        ],
    )
    def test_malformed_lines_name_file_and_line(
        self, tmp_path: Path, text: str, line: int, message: str
    ) -> None:
        """Bad JSON, non-objects and bad records raise with file:line and the reason."""
        good = '{"trace_id":"t","span_id":9,"parent_id":null,"kind":"step","name":"ok",' \
               '"start_ms":0,"start_unix_ms":0,"duration_ms":0}\n'
        path = self._write(tmp_path, good + text)
        with pytest.raises(TraceFileError, match=rf"bad\.jsonl:{line + 1}: .*{message}"):
            list(read_jsonl(path))

    def test_blank_lines_are_skipped(self, tmp_path: Path) -> None:
        """Empty and whitespace-only lines are not spans and not errors."""
        _, spans = rich_trace()
        buf = io.StringIO()
        write_jsonl(spans[:2], buf)
        path = self._write(tmp_path, "\n  \n" + buf.getvalue().replace("\n", "\n\n"))
        assert list(read_jsonl(path)) == spans[:2]


class TestProperties:
    def test_any_json_metadata_round_trips(self) -> None:
        """Random names, JSON metadata, links and events survive write -> read unchanged."""
        from hypothesis import given, settings
        from hypothesis import strategies as st

        scalars = st.one_of(
            st.none(), st.booleans(), st.integers(), st.text(),
            st.floats(allow_nan=False, allow_infinity=False),
        )  # fmt: skip
        values = st.recursive(
            scalars,
            lambda inner: st.lists(inner, max_size=3)
            | st.dictionaries(st.text(), inner, max_size=3),
            max_leaves=8,
        )
        span_st = st.builds(
            lambda sid, parent, name, start, dur, wall, md, links, events: Span(
                trace_id="trace_x", span_id=sid, parent_id=parent, kind="tool_call", name=name,
                start_ms=0, start_unix_ms=wall, duration_ms=0, start_ns=start,
                duration_ns=dur, metadata=md,
                links=[SpanLink("trace_x", str(t), a) for t, a in links],
                events=[SpanEvent(n, wall + o, o, a) for n, o, a in events],
            ),
            st.integers(1, 2**62), st.one_of(st.none(), st.integers(1, 2**62)), st.text(),
            st.integers(0, 2**62), st.integers(0, 2**40), st.integers(0, 2**45),
            st.dictionaries(st.text(), values, max_size=4),
            st.lists(st.tuples(st.integers(1, 99), st.dictionaries(st.text(), st.text(),
                                                                     max_size=2)), max_size=2),
            st.lists(st.tuples(st.text(), st.integers(0, 10**6),
                               st.dictionaries(st.text(), scalars, max_size=2)), max_size=2),
        )  # fmt: skip

        @settings(max_examples=200, deadline=None)
        @given(st.lists(span_st, max_size=5))
        def check(spans: list[Span]) -> None:
            buf = io.StringIO()
            write_jsonl(spans, buf)
            path = Path(self._tmp) / "p.jsonl"
            path.write_text(buf.getvalue(), encoding="utf-8")
            assert list(read_jsonl(path)) == spans

        check()

    @pytest.fixture(autouse=True)
    def _tmpdir(self, tmp_path: Path) -> None:
        self._tmp = tmp_path


    def test_lone_surrogates_are_written_as_text(self, tmp_path: Path) -> None:
        """Lone surrogates (from bad decoding) come back as backslash text: strict UTF-8 JSON."""
        c = SpanCollector()
        sid = c.start("step", "bad\udcff name")
        c.set_metadata(sid, "raw", "x\ud800y")
        c.end(sid)
        path = tmp_path / "s.jsonl"
        write_jsonl(c.spans(), path)
        path.read_text(encoding="utf-8").encode("utf-8")  # nothing a strict reader refuses
        (back,) = read_jsonl(path)
        assert (back.name, back.metadata) == ("bad\\udcff name", {"raw": "x\\ud800y"})
        live = tmp_path / "live.jsonl"
        with JsonlStreamWriter(live):
            c.end(c.start("step", "\udcff"))
        assert [s.name for s in read_jsonl(live)] == ["\\udcff"]


class TestThreads:
    def test_spans_ended_on_many_threads_give_whole_lines(self, tmp_path: Path) -> None:
        """8 threads ending 500 spans each: every line is a whole span, none lost."""
        import threading

        path = tmp_path / "threads.jsonl"
        c = SpanCollector()
        with JsonlStreamWriter(path, collector=c) as writer:

            def work(t: int) -> None:
                for i in range(500):
                    c.end(c.start("step", f"t{t}-{i}"))

            threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        names = sorted(s.name for s in read_jsonl(path))
        assert names == sorted(f"t{t}-{i}" for t in range(8) for i in range(500))
        assert writer.count == 4000


def test_recorded_lane_is_read_when_present() -> None:
    """A JSONL record with "lane" keeps it; one without reads as 0 (unknown)."""
    from harn_async_trace.export import span_from_dict

    base = {"trace_id": "t", "span_id": 2, "parent_id": None, "kind": "step", "name": "a",
            "start_ms": 0, "start_unix_ms": 1, "duration_ms": 2}  # fmt: skip
    assert span_from_dict({**base, "lane": 2}).lane == 2
    assert span_from_dict(base).lane == 0
