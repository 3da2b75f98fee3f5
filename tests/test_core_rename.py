"""``collector.rename(span_id, name)``: a new name for an open span (both cores).

The module runs on the core this process uses (``make test`` and
``make test-pure`` cover both); the differential test drives ``rename``
on both side by side, and the parity program exports a renamed span.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harn_async_trace import SpanCollector, span, use_collector
from harn_async_trace._core import _ccore, _pure
from harn_async_trace.export.jsonl import write_jsonl

CORES = [pytest.param(_pure.CoreCollector, id="pure")]
if _ccore is not None:
    CORES.append(pytest.param(_ccore.CoreCollector, id="compiled"))


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest) -> type[_pure.CoreCollector]:
    """Each core's collector class (the compiled one when it is built)."""
    core_class: type[_pure.CoreCollector] = request.param
    return core_class


class TestRename:
    def test_an_open_span_takes_the_new_name(self, core: type[_pure.CoreCollector]) -> None:
        c = core()
        span_id = c.open("spawn", "Task-1", detached=True, push=False)
        assert c.rename(span_id, "fetch") is True
        record = c.end(span_id)
        assert record is not None
        assert record.name == "fetch"
        assert [s.name for s in c.spans()] == ["fetch"]

    def test_renamed_twice_and_with_children(self, core: type[_pure.CoreCollector]) -> None:
        """The last name wins; the span's id, parent, kind and children are untouched."""
        c = core()
        outer = c.open("pipeline", "outer")
        inner = c.open("step", "a")
        assert c.rename(inner, "b")
        assert c.rename(inner, "c")
        child = c.open("fn_call", "child")
        c.close(child)
        c.close(inner)
        c.close(outer)
        by_id = {s.span_id: s for s in c.spans()}
        assert (by_id[inner].name, by_id[inner].kind.value, by_id[inner].parent_id) == (
            "c", "step", outer)
        assert by_id[child].parent_id == inner
        assert by_id[outer].name == "outer"

    def test_a_str_subclass_is_stored_as_a_str(self, core: type[_pure.CoreCollector]) -> None:
        class Name(str):
            pass

        c = core()
        span_id = c.open("step", "a")
        assert c.rename(span_id, Name("b"))
        record = c.end(span_id)
        assert record is not None
        assert type(record.name) is str
        assert record.name == "b"

    def test_the_jsonl_export_carries_the_new_name(
        self, core: type[_pure.CoreCollector], tmp_path: Path
    ) -> None:
        c = core()
        span_id = c.open("spawn", "before")
        c.rename(span_id, "after")
        c.close(span_id)
        out = tmp_path / "t.jsonl"
        write_jsonl(c.spans(), out)
        (line,) = out.read_text(encoding="utf-8").splitlines()
        assert json.loads(line)["name"] == "after"
        assert "before" not in line

    def test_a_handle_of_span_sees_it(self) -> None:
        """``with span(...)``'s span renamed through the collector (the public collector)."""
        collector = SpanCollector()
        with use_collector(collector), span("step", "draft") as handle:
            assert collector.rename(handle.span_id, "final")
        assert [s.name for s in collector.spans()] == ["final"]


class TestNotOpen:
    def test_ended_unknown_zero_and_negative_ids(self, core: type[_pure.CoreCollector]) -> None:
        c = core()
        span_id = c.open("step", "a")
        c.close(span_id)
        assert c.rename(span_id, "late") is False
        assert c.rename(span_id + 1, "x") is False
        assert c.rename(0, "x") is False
        assert c.rename(-1, "x") is False
        assert c.rename(1 << 70, "x") is False
        assert [s.name for s in c.spans()] == ["a"]

    def test_after_reset(self, core: type[_pure.CoreCollector]) -> None:
        c = core()
        span_id = c.open("step", "a")
        c.reset()
        assert c.rename(span_id, "x") is False
        assert c.spans() == []

    @pytest.mark.parametrize("bad", [True, False, "1", 1.5, None, [1], (1,)])
    def test_ids_that_are_not_span_ids(self, core: type[_pure.CoreCollector], bad: Any) -> None:
        """Not open, as record_event answers; a bool is never span 1 (True == 1 as a key)."""
        c = core()
        span_id = c.open("step", "a")
        assert span_id == 1
        assert c.rename(bad, "x") is False
        record = c.end(span_id)
        assert record is not None
        assert record.name == "a"


class TestTypes:
    @pytest.mark.parametrize("bad", [1, None, b"x", ["x"]])
    def test_a_non_str_name_is_a_type_error_naming_name(
        self, core: type[_pure.CoreCollector], bad: Any
    ) -> None:
        """The same check and message as open's; raised whether or not the id is open."""
        c = core()
        span_id = c.open("step", "a")
        message = f"name must be a str, got {type(bad).__name__}: {bad!r}"
        with pytest.raises(TypeError) as opened:
            c.open("step", bad)
        assert str(opened.value) == message
        for target in (span_id, 999):
            with pytest.raises(TypeError) as renamed:
                c.rename(target, bad)
            assert str(renamed.value) == message
        record = c.end(span_id)
        assert record is not None
        assert record.name == "a"

    def test_positional_only_and_arity(self, core: type[_pure.CoreCollector]) -> None:
        c = core()
        span_id = c.open("step", "a")
        with pytest.raises(TypeError):
            c.rename(span_id, name="b")  # type: ignore[call-arg]  # the error under test
        with pytest.raises(TypeError):
            c.rename(span_id)  # type: ignore[call-arg]  # the error under test
        with pytest.raises(TypeError):
            c.rename(span_id, "b", "c")  # type: ignore[call-arg]  # the error under test
        record = c.end(span_id)
        assert record is not None
        assert record.name == "a"
