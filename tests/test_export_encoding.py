"""Every exporter writes any metadata value as valid, strict UTF-8 JSON by one rule (_encoding)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harn_async_trace import MockClock, Span, SpanCollector, SpanLink, install_override
from harn_async_trace.export import (
    JsonlStreamWriter,
    format_summary,
    otlp_span_json,
    read_jsonl,
    span_to_json_line,
    to_otel_span,
    write_chrome_trace,
    write_json,
    write_jsonl,
    write_otlp_json,
    write_profile_json,
)
from harn_async_trace.export._encoding import (
    CYCLE,
    MAX_DEPTH,
    TOO_DEEP,
    TRUNCATED,
    dumps,
    json_safe,
    terminal_text,
)
from vm_demo.objects import Closure

NAN = float("nan")


class BadRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _closure() -> Closure:
    """A Harn function value (what `--trace` may put in metadata)."""
    return Closure(cast(Any, SimpleNamespace(name="f")), (), {})


def _deep(levels: int) -> list[Any]:
    top: list[Any] = []
    current = top
    for _ in range(levels):
        nested: list[Any] = []
        current.append(nested)
        current = nested
    return top


def _dag(levels: int) -> list[Any]:
    shared: list[Any] = []
    for _ in range(levels):
        shared = [shared, shared]
    return shared


def hostile_values() -> dict[str, Any]:
    """One value of every kind the issue lists (and a few more)."""
    loop_list: list[Any] = [1]
    loop_list.append(loop_list)
    loop_dict: dict[str, Any] = {"a": 1}
    loop_dict["self"] = loop_dict
    return {
        "nan": NAN,
        "inf": math.inf,
        "ninf": -math.inf,
        "big": 10**5000,
        "neg_big": -(10**5000),
        "loop_list": loop_list,
        "loop_dict": loop_dict,
        "odd_keys": {(1, 2): "tuple", 1: "int", "1": "str", None: "none", NAN: "nan"},
        "deep": _deep(5_000),
        "dag": _dag(40),
        "bytes": b"\x00\xff",
        "closure": _closure(),
        "object": object(),
        "bad_repr": BadRepr(),
        "set": {3, 1, 2},
        "surrogate": "bad \udcff bytes",
        "surrogate key \udcfe": 1,
        "escape": "\x1b[31mred\x1b[0m",
        "nan_list": [NAN, 1.5, 10**5000],
    }


def hostile_spans() -> list[Span]:
    """Spans whose names, metadata, events and links carry the hostile values."""
    with install_override(MockClock(start_wall_ms=1_700_000_000_000)):
        c = SpanCollector()
        root = c.start("pipeline", "root \udcff \x1b]0;title\x07")
        for key, value in hostile_values().items():
            c.set_metadata(root, key, value)
        c.set_metadata(root, "error", "boom \udcff")
        c.record_event(root, "event \udcff", {"v": NAN, "o": object(), "d": _deep(300)})
        link = c.span_link(root)
        assert link is not None
        odd_attributes: Any = {"x": {1, 2}, "n": NAN}
        child = c.start_with_links(
            "llm_call", "chat", [SpanLink(link.trace_id, link.span_id, odd_attributes)]
        )
        c.set_metadata(child, "model", BadRepr())
        c.set_metadata(child, "cost_usd", NAN)
        c.set_metadata(child, "input_tokens", 10**5000)
        c.end(child)
        c.end(root)
        return c.spans()


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)


def strict_json(text: str) -> Any:
    """Parse ``text`` as RFC 8259 JSON that every reader takes: no NaN, strict UTF-8."""

    def reject(name: str) -> Any:
        raise AssertionError(f"non-JSON constant {name} in output")

    text.encode("utf-8")  # no raw lone surrogate
    data = json.loads(text, parse_constant=reject)
    for string in _walk_strings(data):
        string.encode("utf-8")  # no \udcXX escape either
    return data


def _written(writer: Callable[[list[Span], io.StringIO], object], spans: list[Span]) -> str:
    buffer = io.StringIO()
    writer(spans, buffer)
    return buffer.getvalue()


class TestTheRule:
    def test_rule_spelling(self) -> None:
        """Each hostile value has its documented spelling."""
        loop: list[Any] = [1]
        loop.append(loop)
        clean = json_safe({
            "nan": NAN, "inf": math.inf, "ninf": -math.inf, "big": 16**4000, "loop": loop,
            "keys": {(1, 2): 1, 1: 2, "1": 3, None: 4, False: 5, 1.5: 6}, "set": {"b", "a"},
            "bytes": b"\x00", "object": object(), "closure": _closure(),
            "bad": BadRepr(), "surrogate": "x\udcff",
        })  # fmt: skip
        assert clean["nan"] == "NaN"
        assert (clean["inf"], clean["ninf"]) == ("Infinity", "-Infinity")
        assert clean["big"] == "0x1" + "0" * 4000
        assert clean["loop"] == [1, CYCLE]
        assert clean["keys"] == {"(1, 2)": 1, "1": 2, "1 (str)": 3, "null": 4, "false": 5,
                                 "1.5": 6}  # fmt: skip
        assert clean["set"] == ["a", "b"]
        assert clean["bytes"] == "b'\\x00'"
        assert clean["object"] == "<builtins.object object>"
        assert clean["closure"] == "<vm_demo.objects.Closure object>"
        assert clean["bad"] == "<test_export_encoding.BadRepr object (repr failed)>"
        assert clean["surrogate"] == "x\\udcff"

    def test_depth_and_size_are_bounded(self) -> None:
        """5,000-deep nesting is cut at MAX_DEPTH; a doubled DAG is cut, not expanded."""
        text = dumps(_deep(5_000))
        assert text.count("[") == MAX_DEPTH
        assert json.dumps(TOO_DEEP) in text
        dag = json_safe(_dag(40))
        assert TRUNCATED in dumps(dag)

    def test_fast_and_slow_paths_agree(self) -> None:
        """A shallow value spells the same whether the C encoder or the walk writes it."""
        for value in ({"a": 1, "b": [1.5, "é"]}, [{"k": None}], {"n": NAN}, {"s": "x\udcff"}):
            assert dumps(value) == json.dumps(
                json_safe(value), separators=(",", ":"), ensure_ascii=False
            )

    def test_plain_values_are_unchanged(self) -> None:
        """Ordinary JSON values come out as json.dumps writes them."""
        value = {"model": "gpt-é", "tokens": 12, "cost": 0.0125, "ok": True, "none": None,
                 "list": [1, "a", [2.5]], "nested": {"z": {"y": []}}}  # fmt: skip
        assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def test_terminal_text_shows_controls(self) -> None:
        """ESC, CR, BEL, DEL and C1 CSI are shown as text; newline and tab stay."""
        shown = terminal_text("a\x1b[2J\r\x07\x7f\x9b\tb\nc\udcff")
        assert shown == "a\\x1b[2J\\x0d\\x07\\x7f\\x9b\tb\nc\\udcff"


WRITERS: dict[str, Callable[[list[Span], io.StringIO], object]] = {
    "json": write_json,
    "jsonl": write_jsonl,
    "profile": write_profile_json,
    "chrome": write_chrome_trace,
    "otlp": write_otlp_json,
}


class TestEveryExporter:
    @pytest.mark.parametrize("name", sorted(WRITERS))
    def test_file_writer_writes_strict_json(self, name: str) -> None:
        """Each file exporter writes hostile spans without raising, as strict JSON."""
        text = _written(WRITERS[name], hostile_spans())
        if name == "jsonl":
            records = [strict_json(line) for line in text.splitlines()]
            assert len(records) == 2
        else:
            strict_json(text)
        assert "\x1b" not in text.replace("\\u001b", "")

    def test_jsonl_round_trip_keeps_plain_values(self, tmp_path: Path) -> None:
        """Hostile spans read back with the rule's spellings and the plain fields intact."""
        spans = hostile_spans()
        write_jsonl(spans, tmp_path / "t.jsonl")
        back = list(read_jsonl(tmp_path / "t.jsonl"))
        assert [(s.span_id, s.parent_id, s.duration_ns) for s in back] == [
            (s.span_id, s.parent_id, s.duration_ns) for s in spans
        ]
        root = next(s for s in back if s.parent_id is None)
        assert root.metadata["nan"] == "NaN"
        assert root.metadata["surrogate"] == "bad \\udcff bytes"
        assert root.name.startswith("root \\udcff ")

    def test_otlp_json_uses_proto3_spellings(self) -> None:
        """OTLP/JSON: NaN is the proto3 string "NaN", a huge int a string value."""
        data = strict_json(dumps(otlp_span_json(hostile_spans()[0])))
        attributes = {a["key"]: a["value"] for a in data["attributes"]}
        # Plain harn keys go under harn. in OTel output (issue 17).
        assert attributes["harn.cost_usd"] == {"doubleValue": "NaN"}
        assert attributes["gen_ai.usage.input_tokens"]["stringValue"].startswith("0x")

    def test_live_stream_writes_every_span(self) -> None:
        """JsonlStreamWriter writes a line for every hostile span as it ends."""
        out = io.StringIO()
        with JsonlStreamWriter(out) as writer:
            spans = hostile_spans()
        assert writer.count == len(spans) == 2
        assert [strict_json(line)["span_id"] for line in out.getvalue().splitlines()] == [
            s.span_id for s in spans
        ]

    def test_live_stream_never_drops_a_span_it_cannot_encode(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Even if encoding a span's metadata failed, its line is written with the error."""
        import harn_async_trace.export.jsonl as jsonl

        def broken(value: Any, **_: Any) -> str:
            raise MemoryError("simulated")

        monkeypatch.setattr(jsonl, "dumps", broken)
        out = io.StringIO()
        with JsonlStreamWriter(out) as writer:
            spans = hostile_spans()
        lines = [strict_json(line) for line in out.getvalue().splitlines()]
        assert writer.count == 2
        assert [line["span_id"] for line in lines] == [s.span_id for s in spans]
        assert "simulated" in lines[0]["metadata"]["encoding_error"]

    def test_summary_accepts_hostile_values(self) -> None:
        """format_summary renders hostile metadata by the rule, never raising."""
        text = format_summary(hostile_spans())
        assert 'nan="NaN"' in text
        assert "big=" in text
        assert f'loop_list=[1,"{CYCLE}"]' in text

    def test_otel_bridge_gets_valid_attributes(self) -> None:
        """to_otel_span: every attribute is an OTel-valid, strict UTF-8 value."""
        for span in hostile_spans():
            readable = to_otel_span(span)
            readable.name.encode("utf-8")
            assert readable.attributes is not None
            for key, value in readable.attributes.items():
                key.encode("utf-8")
                items = value if isinstance(value, tuple | list) else [value]
                for item in items:
                    assert isinstance(item, str | bool | int | float), (key, item)
                    if isinstance(item, str):
                        item.encode("utf-8")
                    if isinstance(item, int) and not isinstance(item, bool):
                        assert -(2**63) <= item < 2**63
            for event in readable.events:
                event.name.encode("utf-8")
            if readable.status.description is not None:
                readable.status.description.encode("utf-8")

    def test_span_line_is_one_line(self) -> None:
        """A JSONL line never contains a raw newline, whatever the metadata."""
        for span in hostile_spans():
            line = span_to_json_line(span)
            assert line.count("\n") == 1
            assert line.endswith("\n")
