"""Spans the VM emits: kinds, names, parents (also under concurrency), metadata."""

# ruff: noqa: E501

from __future__ import annotations

import pytest
from vm_harness import LOOPS, run

from harn_async_trace import Span


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {s.name: s for s in spans}


def parent_name(spans: list[Span], span: Span) -> str | None:
    ids = {s.span_id: s for s in spans}
    return None if span.parent_id is None else ids[span.parent_id].name


class TestCallSpans:
    def test_pipeline_and_nested_fn_calls(self) -> None:
        """fn_call spans nest under the caller's span, all under the pipeline."""
        _, spans = run("fn b() { 1 }\nfn a() { b() }\npipeline main() { a() }", tracing=True)
        s = by_name(spans)
        assert (s["main"].kind, s["a"].kind, s["b"].kind) == ("pipeline", "fn_call", "fn_call")
        assert parent_name(spans, s["b"]) == "a"
        assert parent_name(spans, s["a"]) == "main"
        assert s["main"].parent_id is None

    def test_closures_are_not_traced(self) -> None:
        """Anonymous closures emit no fn_call span; named fns do."""
        _, spans = run("fn f(x) { x }\n[1, 2].map({ x -> f(x) })", tracing=True)
        assert sorted(s.name for s in spans) == ["default", "f", "f"]

    def test_step_decorator(self) -> None:
        """@step fns emit step spans instead of fn_call."""
        _, spans = run("@step\nfn load() { 1 }\nload()", tracing=True)
        assert by_name(spans)["load"].kind == "step"

    def test_error_recorded_on_unwound_span(self) -> None:
        """A fn_call span ended by an error carries the error message."""
        _, spans = run('fn bad() { throw "nope" }\ntry { bad() } catch (e) { }', tracing=True)
        assert by_name(spans)["bad"].metadata["error"] == "nope"

    def test_import_span(self, tmp_path: object) -> None:
        """import is an import span under the pipeline; the module's code nests in it."""
        import asyncio
        import pathlib

        from harn_async_trace import SpanCollector, use_collector
        from vm_demo.runtime import VM

        d = pathlib.Path(str(tmp_path))
        (d / "lib.harn").write_text("fn helper() { 1 }\n")
        (d / "main.harn").write_text('import "lib"\nhelper()\n')
        c = SpanCollector()

        async def main() -> None:
            with use_collector(c):
                await VM().run_file(str(d / "main.harn"))

        asyncio.run(main())
        spans = c.spans()
        s = by_name(spans)
        assert s["lib"].kind == "import"
        assert parent_name(spans, s["lib"]) == "default"
        assert parent_name(spans, s["helper"]) == "default"

    def test_tracing_off_records_nothing(self) -> None:
        """With tracing disabled no spans are recorded."""
        _, spans = run("fn f() { 1 }\nf()", tracing=False)
        assert spans == []


@pytest.mark.parametrize("loop", LOOPS)
class TestConcurrentParents:
    def test_parallel_branches_parent_their_calls(self, loop: str) -> None:
        """Interleaved branches keep their own chains: each work() nests under its branch."""
        src = "fn work(i) { sleep((3 - i) * 1ms)\ninner(i) }\nfn inner(i) { sleep(1ms)\ni }\nparallel 3 { i -> work(i) }"
        _, spans = run(src, loop=loop, tracing=True)
        ids = {s.span_id: s for s in spans}
        par = next(s for s in spans if s.kind == "parallel")
        branches = [s for s in spans if s.kind == "spawn"]
        assert sorted(b.name for b in branches) == [f"count@test.harn:5[{i}]" for i in range(3)]
        for b in branches:
            assert b.parent_id is None
            assert b.links[0].span_id == str(par.span_id)
            assert b.links[0].attributes["relation"] == "branch_of"
            works = [s for s in spans if s.parent_id == b.span_id]
            assert [w.name for w in works] == ["work"]
            inners = [s for s in spans if s.parent_id == works[0].span_id]
            assert [ids[i.parent_id].name for i in inners] == ["work"]  # type: ignore[index]  # inner spans are nested
        assert parent_name(spans, par) == "default"

    def test_spawn_is_detached_and_linked(self, loop: str) -> None:
        """spawn opens a detached spawn span linked to the spawner's span."""
        src = "fn job() { sleep(1ms) }\nfn starter() { let h = spawn { job() }\nreturn h }\nlet h = starter()\nawait(h)"
        _, spans = run(src, loop=loop, tracing=True)
        s = by_name(spans)
        sp = next(x for x in spans if x.kind == "spawn")
        assert sp.parent_id is None
        assert sp.links[0].span_id == str(s["starter"].span_id)
        assert sp.links[0].attributes["relation"] == "spawned_from"
        assert s["job"].parent_id == sp.span_id
        assert sp.metadata["status"] == "ok"


class TestLlmAndTools:
    def test_llm_call_usage_metadata(self) -> None:
        """llm_call spans carry model, provider, tokens and cost."""
        out, spans = run(
            'let r = llm_call("Summarize the report", {model: "gpt-4o"})\nprintln(r.text, r.input_tokens, r.output_tokens)',
            tracing=True,
        )
        assert out == "[gpt-4o] answer to: Summarize the report 5 10\n"
        span = by_name(spans)["gpt-4o"]
        assert span.kind == "llm_call"
        assert span.metadata == {
            "model": "gpt-4o",
            "provider": "openai",
            "input_tokens": 5,
            "output_tokens": 10,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost_usd": 0.0001125,
        }

    def test_unpriced_model_omits_cost(self) -> None:
        """Models without a price have no cost_usd."""
        _, spans = run('llm_call("hi", {model: "llama-3-8b"})', tracing=True)
        span = by_name(spans)["llama-3-8b"]
        assert span.metadata["provider"] == "local"
        assert "cost_usd" not in span.metadata

    def test_model_switch_emits_route_marker(self) -> None:
        """Switching model emits a model_route marker with from/to/reason."""
        _, spans = run(
            'llm_call("a", {model: "gpt-4o-mini"})\nllm_call("b", {model: "gpt-4o", reason: "low confidence"})',
            tracing=True,
        )
        route = next(s for s in spans if s.kind == "model_route")
        assert route.metadata == {
            "from_model": "gpt-4o-mini",
            "to_model": "gpt-4o",
            "reason": "low confidence",
        }
        assert route.duration_ms == 0

    def test_tools_mount_and_call(self) -> None:
        """tool_mount emits a marker; calling a tool opens a tool_call span."""
        src = 'let t = tool_define("search", "find things", { q -> "found ${q}" })\ntool_mount([t], "builtin")\nprintln(t("x"), tool_call("search", "y"))'
        out, spans = run(src, tracing=True)
        assert out == "found x found y\n"
        mount = next(s for s in spans if s.kind == "tool_mount")
        assert mount.metadata == {"tool_names": ["search"], "tool_count": 1, "source": "builtin"}
        calls = [s for s in spans if s.kind == "tool_call"]
        assert [c.metadata["tool_name"] for c in calls] == ["search", "search"]

    def test_tool_fields(self) -> None:
        """A tool exposes its name and description."""
        out, _ = run(
            'let t = tool_define("search", "find things", { q -> q })\nprintln(t.name, t.description, type_of(t))'
        )
        assert out == "search find things tool\n"

    def test_mock_tool_requests(self) -> None:
        """With tools offered, the mock requests the tools named in the prompt."""
        out, _ = run(
            'let t = tool_define("weather", "w", { q -> q })\nprintln(llm_call("use weather please", {tools: [t]}).tool_calls)'
        )
        assert out == "[{args: {query: use weather please}, name: weather}]\n"


class TestTracingBuiltins:
    def test_trace_spans_and_summary(self) -> None:
        """trace_spans() returns span dicts; trace_summary() the summary text."""
        out, _ = run(
            'fn f() { 1 }\nf()\nlet s = trace_spans()\nprintln(s[0].kind, s[0].name, type_of(s[0].span_id))\nprintln(trace_summary().split("\\n")[0])',
            tracing=True,
        )
        assert out == "fn_call f int\nTrace: 1 spans, 0ms total\n"

    def test_enable_tracing_from_program(self) -> None:
        """enable_tracing(true) starts recording from that point."""
        out, _ = run(
            "fn f() { 1 }\nf()\nenable_tracing(true)\nf()\nprintln(trace_spans().map({ s -> s.name }))",
            tracing=False,
        )
        assert out == "[f]\n"

    def test_user_timing(self) -> None:
        """trace_start/trace_end record a user_timing span, even with tracing off."""
        out, spans = run(
            'let t = trace_start("phase")\nsleep(1ms)\nlet d = trace_end(t)\nprintln(type_of(d), type_of(trace_id()), t.name)',
            tracing=False,
        )
        assert out == "int string phase\n"
        assert [(s.kind, s.name) for s in spans] == [("user_timing", "phase")]
