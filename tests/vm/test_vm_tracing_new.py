"""Spans of the constructs added for issue 21 (match arms, struct methods,
generators, iterator callbacks, supervisor children, mutex bodies), with
their parents under concurrency, and the two VM items of issue 13: spans
unwound by a `deadline` are `cancelled`, and `enable_tracing(true)` while
tracing is on keeps the trace.
"""

# ruff: noqa: E501

from __future__ import annotations

import json
import pathlib

import pytest
from vm_harness import LOOPS, run

from harn_async_trace import Span
from harn_async_trace.cli import main


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.name == name]


def parent(spans: list[Span], span: Span) -> Span | None:
    ids = {s.span_id: s for s in spans}
    return None if span.parent_id is None else ids[span.parent_id]


def branch_of(spans: list[Span], span: Span) -> Span:
    """The nearest enclosing `spawn` span (the parallel branch or spawned task)."""
    p = parent(spans, span)
    while p is not None and p.kind != "spawn":
        p = parent(spans, p)
    assert p is not None, f"{span.name} is not under a spawn span"
    return p


def assert_each_under_own_branch(spans: list[Span], inner: str, outer: str, count: int) -> None:
    """Every `inner` span's parent is an `outer` span, one per distinct branch."""
    inners = named(spans, inner)
    assert len(inners) == count
    parents = [parent(spans, s) for s in inners]
    assert all(p is not None and p.name == outer for p in parents)
    assert len({branch_of(spans, s).span_id for s in inners}) == count


# A leaf that suspends, so branches interleave while their spans are open.
LEAF = "fn leaf(x) { sleep((4 - x) * 1ms)\nreturn x }\n"


@pytest.mark.parametrize("loop", LOOPS)
class TestNewConstructSpans:
    def test_match_arm_calls_nest_under_the_matching_fn(self, loop: str) -> None:
        """Calls made in match arms are children of the fn running the match, per branch."""
        src = (
            LEAF
            + "fn handle(i) { return match i { 0 -> { leaf(i) } n if n > 1 -> { leaf(n) } _ -> { leaf(1) } } }\nparallel 4 { i -> handle(i) }"
        )
        _, spans = run(src, loop=loop, tracing=True)
        assert_each_under_own_branch(spans, "leaf", "handle", 4)

    def test_struct_methods_are_fn_call_spans(self, loop: str) -> None:
        """An impl method is a `fn_call` span named `Type.method`, under its caller."""
        src = (
            LEAF
            + "struct P { x: int }\nimpl P { fn area(self) { return leaf(self.x) } }\nparallel 4 { i -> P { x: i }.area() }"
        )
        _, spans = run(src, loop=loop, tracing=True)
        assert {s.kind for s in named(spans, "P.area")} == {"fn_call"}
        assert_each_under_own_branch(spans, "leaf", "P.area", 4)
        assert all(parent(spans, s).kind == "spawn" for s in named(spans, "P.area"))  # type: ignore[union-attr]  # each has a parent

    def test_generator_resumes_nest_where_consumed(self, loop: str) -> None:
        """Each pull of a generator is a `fn_call` span under the consumer's span."""
        src = (
            LEAF
            + "fn gen(i) { yield leaf(i)\nyield leaf(i) }\nfn consume(i) { var t = 0\nfor v in gen(i) { t += v }\nreturn t }\nprintln(parallel 3 { i -> consume(i) })"
        )
        out, spans = run(src, loop=loop, tracing=True)
        assert out == "[0, 2, 4]\n"
        gens = named(spans, "gen")
        assert len(gens) == 9  # two yields and the final resume, per branch
        assert all(parent(spans, g).name == "consume" for g in gens)  # type: ignore[union-attr]  # each has a parent
        leafs = named(spans, "leaf")
        assert len(leafs) == 6
        assert all(parent(spans, s).name == "gen" for s in leafs)  # type: ignore[union-attr]  # each has a parent
        assert len({branch_of(spans, s).span_id for s in leafs}) == 3

    def test_iterator_callbacks_nest_under_the_consumer(self, loop: str) -> None:
        """A named fn used as a lazy `map` callback runs under the span that drains the iter."""
        src = (
            LEAF
            + "fn run_it(i) { return [i].iter().map(leaf).to_list() }\nparallel 4 { i -> run_it(i) }"
        )
        _, spans = run(src, loop=loop, tracing=True)
        assert_each_under_own_branch(spans, "leaf", "run_it", 4)

    def test_mutex_bodies_nest_under_their_branch(self, loop: str) -> None:
        """Work inside `mutex { }` stays under the fn of the branch holding the mutex."""
        src = LEAF + "fn guarded(i) { mutex { leaf(i) } }\nparallel 4 { i -> guarded(i) }"
        _, spans = run(src, loop=loop, tracing=True)
        assert_each_under_own_branch(spans, "leaf", "guarded", 4)

    def test_supervisor_children_run_under_linked_spawn_spans(self, loop: str) -> None:
        """Each supervisor child runs under its own detached spawn span linked to the starter."""
        src = (
            LEAF
            + 'fn boot() { return supervisor_start({name: "s", children: [{name: "a", restart: {mode: "never"}, task: { c -> leaf(1) }}, {name: "b", restart: {mode: "never"}, task: { c -> leaf(2) }}]}) }\nlet s = boot()\nsleep(10ms)\nprintln(supervisor_state(s).children.map({ c -> c.status }))'
        )
        out, spans = run(src, loop=loop, tracing=True)
        assert out == "[stopped, stopped]\n"
        kids = [s for s in spans if s.kind == "spawn"]
        assert sorted(k.name for k in kids) == ["supervisor s/a", "supervisor s/b"]
        boot = named(spans, "boot")[0]
        for k in kids:
            assert k.parent_id is None
            assert [str(link.span_id) for link in k.links] == [str(boot.span_id)]
        leafs = named(spans, "leaf")
        assert sorted(branch_of(spans, s).name for s in leafs) == [
            "supervisor s/a",
            "supervisor s/b",
        ]


class TestDeadlineCancels:
    """Issue 13: spans unwound by a Harn `deadline` carry `cancelled: true`."""

    SRC = 'let t = tool_define("slow", "w", { q -> sleep(1s) })\nfn work() { t(1) }\n'

    def test_tool_call_and_fn_spans_inside_the_deadline(self) -> None:
        """The tool_call (and the fn around it) cut off by the deadline are cancelled."""
        _, spans = run(
            self.SRC + "try { deadline 10ms { work() } } catch (e) { println(e) }", tracing=True
        )
        tool = next(s for s in spans if s.kind == "tool_call")
        assert tool.metadata.get("cancelled") is True
        assert named(spans, "work")[0].metadata.get("cancelled") is True

    def test_llm_call_inside_the_deadline(self) -> None:
        """An llm_call in flight when the deadline expires is cancelled."""
        _, spans = run(
            'try { deadline 5ms { llm_call("hi", {latency_ms: 100}) } } catch (e) { }', tracing=True
        )
        llm = next(s for s in spans if s.kind == "llm_call")
        assert llm.metadata.get("cancelled") is True

    def test_pipeline_span_cancelled_in_cli_trace(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Through the CLI: the pipeline root of a run killed by its deadline is cancelled."""
        prog = tmp_path / "p.harn"
        prog.write_text(self.SRC + "pipeline default(task) { deadline 10ms { work() } }\n")
        out = tmp_path / "t.jsonl"
        code = main(["run", str(prog), "--jsonl", str(out), "--mock-time", "1700000000000"])
        capsys.readouterr()
        assert code == 1
        spans = [json.loads(line) for line in out.read_text().splitlines()]
        root = next(s for s in spans if s["kind"] == "pipeline")
        assert root["metadata"].get("cancelled") is True
        assert "deadline exceeded" in root["metadata"]["error"]
        tool = next(s for s in spans if s["kind"] == "tool_call")
        assert tool["metadata"].get("cancelled") is True

    def test_caught_deadline_leaves_outer_spans_alone(self) -> None:
        """Spans outside a caught deadline are not cancelled."""
        _, spans = run(
            self.SRC
            + "fn outer() { try { deadline 10ms { work() } } catch (e) { }\nreturn 1 }\nouter()",
            tracing=True,
        )
        assert "cancelled" not in named(spans, "outer")[0].metadata
        assert "cancelled" not in named(spans, "default")[0].metadata


class TestEnableTracingKeepsTrace:
    """Issue 13: `enable_tracing(true)` while tracing is on does not reset the trace."""

    def test_pipeline_root_survives(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`harn-trace run --jsonl` on a program that re-enables tracing first keeps its pipeline root."""
        prog = tmp_path / "p.harn"
        prog.write_text(
            '@step\nfn load() { llm_call("hi", {}) }\npipeline default(task) {\n  enable_tracing(true)\n  parallel 2 { i -> load() }\n}\n'
        )
        out = tmp_path / "t.jsonl"
        code = main(["run", str(prog), "--jsonl", str(out), "--mock-time", "1700000000000"])
        capsys.readouterr()
        assert code == 0
        spans = [json.loads(line) for line in out.read_text().splitlines()]
        by_id = {s["span_id"]: s for s in spans}
        roots = [s for s in spans if s["parent_id"] is None and s["kind"] != "spawn"]
        assert [r["kind"] for r in roots] == ["pipeline"]
        par = next(s for s in spans if s["kind"] == "parallel")
        assert by_id[par["parent_id"]]["kind"] == "pipeline"
        steps = [s for s in spans if s["kind"] == "step"]
        llms = [s for s in spans if s["kind"] == "llm_call"]
        assert len(steps) == 2
        assert len(llms) == 2
        assert all(by_id[s["parent_id"]]["kind"] == "step" for s in llms)

    def test_off_then_on_starts_a_new_trace(self) -> None:
        """`enable_tracing(false)` then `(true)` still starts recording afresh."""
        out, _ = run(
            "fn f() { 1 }\nf()\nenable_tracing(false)\nf()\nenable_tracing(true)\nf()\nprintln(trace_spans().map({ s -> s.name }))",
            tracing=True,
        )
        assert out == "[f]\n"

    def test_module_function_still_resets(self) -> None:
        """The module-level `set_tracing_enabled(True)` keeps the seed's reset."""
        from harn_async_trace import (
            SpanCollector,
            set_tracing_enabled,
            span_end,
            span_start,
            use_collector,
        )

        c = SpanCollector(enabled=True)
        with use_collector(c):
            span_end(span_start("fn_call", "a"))
            set_tracing_enabled(True)
            assert c.spans() == []
