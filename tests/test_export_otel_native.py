"""use_otel(): live export to a provider, OTel's current span from the harn chain, OTel spans in
the harn trace (checked against the real SDK with InMemorySpanExporter)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import opentelemetry.context as otel_context
import pytest
from boundaries_support import Traced
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from harn_async_trace import (
    MockClock,
    SpanCollector,
    install_override,
    span,
    traced_parallel,
    traced_spawn,
    use_collector,
)
from harn_async_trace._trace_id import trace_id_hex
from harn_async_trace.export import OtelHandle, use_otel
from harn_async_trace.export._otel.mapping import otel_span_id


class StartLog(SpanProcessor):
    """Remembers what each span looked like when the processor heard of its start."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, dict[str, Any], bool]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.starts.append((span.name, dict(span.attributes or {}), span.end_time is None))


@dataclass
class Otel:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    starts: StartLog
    collector: SpanCollector
    handle: OtelHandle
    tracer: Any = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = self.provider.get_tracer("tests.user")

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def by_harn_id(self) -> dict[int, ReadableSpan]:
        return {
            int(s.attributes["harn.span.id"]): s  # type: ignore[arg-type]  # the bridge sets it on every span
            for s in self.finished() if s.attributes and "harn.span.id" in s.attributes
        }


def _provider(sampler: Sampler | None = None) -> tuple[TracerProvider, InMemorySpanExporter,
                                                        StartLog]:
    provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)
    exporter, starts = InMemorySpanExporter(), StartLog()
    provider.add_span_processor(starts)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter, starts


@pytest.fixture
def otel() -> Iterator[Otel]:
    """use_otel() on a fresh SDK provider, with a collector current."""
    provider, exporter, starts = _provider()
    collector = SpanCollector()
    with use_collector(collector), use_otel(provider) as handle:
        yield Otel(provider, exporter, starts, collector, handle)


def _ids(collector: SpanCollector, span_id: int) -> tuple[int, int]:
    return int(trace_id_hex(collector.trace_id), 16), otel_span_id(collector.trace_id, span_id)


class TestLiveExport:
    def test_every_span_reaches_the_processors_at_start_and_end(self, otel: Otel) -> None:
        """on_start sees the span open (with its attributes); on_end gets it with final ones."""
        with span("pipeline", "main") as main:
            with span("llm_call", "gpt-x", model="gpt-x") as call:
                assert [s[0] for s in otel.starts.starts] == ["invoke_workflow main", "chat gpt-x"]
                assert otel.starts.starts[1][1]["gen_ai.request.model"] == "gpt-x"
                assert all(still_open for _, _, still_open in otel.starts.starts)
                assert otel.finished() == []
                call.set_metadata("input_tokens", 7)
        spans = otel.by_harn_id()
        assert set(spans) == {main.span_id, call.span_id}
        assert spans[call.span_id].attributes["gen_ai.usage.input_tokens"] == 7  # type: ignore[index]  # an llm span has attributes
        assert spans[call.span_id].kind is otel_trace.SpanKind.CLIENT
        for harn_id, exported in spans.items():
            assert (exported.context.trace_id, exported.context.span_id) == _ids(
                otel.collector, harn_id)
        parent = spans[call.span_id].parent
        assert parent is not None
        assert parent.span_id == spans[main.span_id].context.span_id
        (record,) = [s for s in otel.collector.spans() if s.span_id == call.span_id]
        assert spans[call.span_id].start_time == record.start_unix_ns
        assert spans[call.span_id].end_time == record.start_unix_ns + record.duration_ns

    def test_the_sampler_decides_on_harn_spans(self) -> None:
        """A sampler sees each harn span's name and attributes at its start and can drop it."""

        class DropNoisy(Sampler):
            def __init__(self) -> None:
                self.seen: list[tuple[str, Any]] = []

            def should_sample(self, parent_context: Any, trace_id: int, name: str,
                              kind: Any = None, attributes: Any = None, links: Any = None,
                              trace_state: Any = None) -> SamplingResult:
                self.seen.append((name, dict(attributes or {})))
                noisy = (attributes or {}).get("harn.noisy")
                return SamplingResult(Decision.DROP if noisy else Decision.RECORD_AND_SAMPLE)

            def get_description(self) -> str:
                return "drop noisy"

        sampler = DropNoisy()
        provider, exporter, _ = _provider(sampler)
        with use_collector(SpanCollector()), use_otel(provider):
            with span("step", "kept"):
                pass
            with span("step", "dropped", noisy=True):
                assert not otel_trace.get_current_span().get_span_context().trace_flags.sampled
        assert [s.name for s in exporter.get_finished_spans()] == ["kept"]
        assert [name for name, _ in sampler.seen] == ["kept", "dropped"]
        assert sampler.seen[1][1]["harn.noisy"] is True

    def test_spans_open_before_use_otel_are_sent_when_they_end(self) -> None:
        """A span that was already open when the bridge started is exported whole at its end."""
        provider, exporter, _ = _provider()
        collector = SpanCollector()
        outer = collector.open("step", "before")
        with use_otel(provider):
            collector.end(collector.open("step", "inside"))
            collector.end(outer)
        names = {s.name: s for s in exporter.get_finished_spans()}
        assert set(names) == {"before", "inside"}
        inside_parent = names["inside"].parent
        assert inside_parent is not None
        assert inside_parent.span_id == names["before"].context.span_id


class TestCurrentSpan:
    def test_inside_a_harn_span_otel_sees_it(self, otel: Otel) -> None:
        """get_current_span() is the open harn span, with the ids its export carries."""
        assert not otel_trace.get_current_span().get_span_context().is_valid
        with span("step", "outer") as outer:
            context = otel_trace.get_current_span().get_span_context()
            assert (context.trace_id, context.span_id) == _ids(otel.collector, outer.span_id)
            with span("step", "inner") as inner:
                inner_context = otel_trace.get_current_span().get_span_context()
                assert inner_context.span_id == _ids(otel.collector, inner.span_id)[1]
            assert otel_trace.get_current_span().get_span_context().span_id == context.span_id
        assert not otel_trace.get_current_span().get_span_context().is_valid

    def test_each_task_sees_its_own_span(self, otel: Otel) -> None:
        """Concurrent tasks each see their own innermost harn span."""

        async def worker(index: int) -> tuple[int, int]:
            with span("step", f"w{index}") as mine:
                await asyncio.sleep(0.001 * (5 - index))
                return mine.span_id, otel_trace.get_current_span().get_span_context().span_id

        async def main() -> list[tuple[int, int]]:
            with span("pipeline", "main"):
                return await asyncio.gather(*(worker(i) for i in range(5)))

        for harn_id, seen in asyncio.run(main()):
            assert seen == _ids(otel.collector, harn_id)[1]

    def test_otel_span_made_current_inside_a_harn_span_wins_until_detached(
        self, otel: Otel
    ) -> None:
        """start_as_current_span inside a harn span is current; harn spans nest under its copy."""
        with span("step", "outer"), otel.tracer.start_as_current_span("db.query") as query:
            assert otel_trace.get_current_span() is query
            with span("step", "inside") as inside:
                here = otel_trace.get_current_span().get_span_context()
                assert here.span_id == _ids(otel.collector, inside.span_id)[1]
        records = {s.name: s for s in otel.collector.spans()}
        assert records["db.query"].parent_id == records["outer"].span_id
        assert records["inside"].parent_id == records["db.query"].span_id
        exported = {s.name: s for s in otel.finished()}
        assert exported["inside"].parent.span_id == query.get_span_context().span_id  # type: ignore[union-attr]  # a child span has a parent

    def test_harn_root_inside_a_foreign_otel_span_is_its_child(self, otel: Otel) -> None:
        """A harn root opened under another provider's current span is that span's child."""
        foreign = TracerProvider().get_tracer("server")
        with foreign.start_as_current_span("GET /ask") as request:
            with span("pipeline", "handle") as handle:
                pass
        exported = otel.by_harn_id()[handle.span_id]
        assert exported.parent is not None
        assert exported.parent.span_id == request.get_span_context().span_id
        assert exported.context.trace_id == request.get_span_context().trace_id


class TestOtelSpansInTheHarnTrace:
    def test_kinds_usage_and_parents(self, otel: Otel) -> None:
        """chat -> llm_call with usage keys, execute_tool -> tool_call, else fn_call."""
        with span("step", "research") as step:
            with otel.tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.provider.name": "openai",
            }) as chat:
                chat.set_attribute("gen_ai.response.model", "gpt-4o-2024")
                chat.set_attribute("gen_ai.usage.input_tokens", 11)
                chat.set_attribute("gen_ai.usage.output_tokens", 4)
                chat.set_attribute("gen_ai.usage.cache_read.input_tokens", 2)
                with otel.tracer.start_as_current_span(
                    "execute_tool search",
                    attributes={"gen_ai.operation.name": "execute_tool",
                                "gen_ai.tool.name": "search"},
                ):
                    pass
            otel.tracer.start_span("GET", attributes={"http.request.method": "GET"}).end()
        records = {s.name: s for s in otel.collector.spans()}
        llm = records["chat gpt-4o"]
        assert llm.kind.value == "llm_call"
        assert llm.parent_id == step.span_id
        assert {k: llm.metadata[k] for k in (
            "model", "provider", "input_tokens", "output_tokens", "cache_read_tokens",
            "cache_write_tokens")} == {
            "model": "gpt-4o-2024", "provider": "openai", "input_tokens": 11,
            "output_tokens": 4, "cache_read_tokens": 2, "cache_write_tokens": 0}
        assert llm.metadata["gen_ai.request.model"] == "gpt-4o"
        tool = records["execute_tool search"]
        assert (tool.kind.value, tool.metadata["tool_name"], tool.parent_id) == (
            "tool_call", "search", llm.span_id)
        http = records["GET"]
        assert (http.kind.value, http.parent_id) == ("fn_call", step.span_id)
        assert http.metadata == {"http.request.method": "GET"}
        # Exported once each: the OTel spans by the SDK itself, the harn step by the bridge.
        assert sorted(s.name for s in otel.finished()) == sorted(
            ["research", "chat gpt-4o", "execute_tool search", "GET"])

    def test_time_to_first_chunk_becomes_a_first_token_event(self, otel: Otel) -> None:
        """gen_ai.response.time_to_first_chunk (seconds) is a first_token event in ms."""
        with span("step", "s"):
            chat = otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
            chat.set_attribute("gen_ai.response.time_to_first_chunk", 0.125)
            chat.end()
        record = next(s for s in otel.collector.spans() if s.name == "chat m")
        (event,) = record.events
        assert (event.name, event.attributes) == ("first_token", {"time_to_first_token_ms": 125.0})

    def test_the_first_token_event_sits_at_start_plus_ttft(self) -> None:
        """Not at the span's end: the mirror's start + time_to_first_chunk, exact under a mock."""
        provider, _, _ = _provider()
        clock = MockClock(start_wall_ms=1_700_000_000_000)
        collector = SpanCollector()
        with install_override(clock), use_collector(collector), use_otel(provider):
            with span("step", "s"):
                chat = provider.get_tracer("t").start_span(
                    "chat m", attributes={"gen_ai.operation.name": "chat"})
                clock.advance_ns(2_000_000_000)  # a 2 s stream; its first chunk came at 0.125 s
                chat.set_attribute("gen_ai.response.time_to_first_chunk", 0.125)
                chat.end()
        record = next(s for s in collector.spans() if s.name == "chat m")
        (event,) = record.events
        assert record.duration_ms == 2_000
        assert (event.name, event.offset_ms, event.time_unix_ms) == (
            "first_token", 125, record.start_unix_ms + 125)
        assert event.attributes == {"time_to_first_token_ms": 125.0}

    def test_error_status_becomes_error_metadata(self, otel: Otel) -> None:
        """An OTel span that ends with an ERROR status is an error span in the harn trace."""
        with span("step", "s"), contextlib.suppress(ValueError):
            with otel.tracer.start_as_current_span("call"):
                raise ValueError("bad input")
        record = next(s for s in otel.collector.spans() if s.name == "call")
        assert record.metadata["error"] == "ValueError: bad input"
        assert record.metadata["error_type"] == "_OTHER"

    @pytest.mark.parametrize("capture", [False, True])
    def test_message_content_only_when_asked(self, capture: bool) -> None:
        """Content attributes are dropped from mirrors and from exports of harn spans."""
        provider, exporter, _ = _provider()
        collector = SpanCollector()
        content = {"gen_ai.input.messages": '[{"role":"user"}]', "gen_ai.prompt.0.content": "hi"}
        with use_collector(collector), use_otel(provider, capture_content=capture):
            tracer = provider.get_tracer("t")
            with span("llm_call", "m", model="m") as call:
                for key, value in content.items():
                    call.set_metadata(key, value)
                tracer.start_span("chat m", attributes={
                    "gen_ai.operation.name": "chat", **content}).end()
        mirror = next(s for s in collector.spans() if s.name == "chat m")
        exported = next(s for s in exporter.get_finished_spans() if s.name == "chat m"
                        and "harn.span.id" in (s.attributes or {}))
        for key in content:
            assert (key in mirror.metadata) is capture
            assert (key in (exported.attributes or {})) is capture

    def test_disabled_collector_records_nothing(self) -> None:
        """With tracing off, OTel spans are exported by OTel only and no harn span is made."""
        provider, exporter, _ = _provider()
        collector = SpanCollector(enabled=False)
        with use_collector(collector), use_otel(provider):
            provider.get_tracer("t").start_span("x").end()
        assert collector.spans() == []
        assert [s.name for s in exporter.get_finished_spans()] == ["x"]


class TestHandle:
    def test_twice_is_harmless_and_close_undoes_it(self) -> None:
        """A second call shares the bridge; closing every handle puts OTel back as it was."""
        provider, exporter, _ = _provider()
        runtime = otel_context._RUNTIME_CONTEXT
        collector = SpanCollector()
        with use_collector(collector):
            first = use_otel(provider)
            second = use_otel(provider)
            with span("step", "once"):
                pass
            assert [s.name for s in exporter.get_finished_spans()] == ["once"]
            second.close()
            second.close()
            assert first.active
            with span("step", "still"):
                assert otel_trace.get_current_span().get_span_context().is_valid
            first.close()
            assert otel_context._RUNTIME_CONTEXT is runtime
            with span("step", "after"):
                assert not otel_trace.get_current_span().get_span_context().is_valid
            provider.get_tracer("t").start_span("plain").end()
        assert [s.name for s in exporter.get_finished_spans()] == ["once", "still", "plain"]
        assert [s.name for s in collector.spans()] == ["once", "still", "after"]

    def test_reopening_on_a_provider_reuses_its_processor(self) -> None:
        """Open/close cycles on one provider add one recording processor, not one each."""
        provider, _, _ = _provider()
        before = len(provider._active_span_processor._span_processors)
        collector = SpanCollector()
        with use_collector(collector):
            for _ in range(3):
                with use_otel(provider):
                    provider.get_tracer("t").start_span("x").end()
        assert len(provider._active_span_processor._span_processors) == before + 1
        assert [s.name for s in collector.spans()] == ["x", "x", "x"]

    def test_another_provider_while_active_is_refused(self, otel: Otel) -> None:
        """Two providers at once would export every span twice: refused, naming the fix."""
        with pytest.raises(RuntimeError, match="close that handle first"):
            use_otel(TracerProvider())

    def test_bad_arguments(self) -> None:
        """Not an SDK provider, or a non-bool capture_content: TypeError naming it."""
        with pytest.raises(TypeError, match="SDK TracerProvider"):
            use_otel(otel_trace.NoOpTracerProvider())  # type: ignore[arg-type]  # runtime guard
        with pytest.raises(TypeError, match="capture_content"):
            use_otel(TracerProvider(), capture_content="yes")  # type: ignore[arg-type]  # runtime guard


def _parent_of(spans: Sequence[ReadableSpan], name: str) -> int | None:
    span = next(s for s in spans if s.name == name)
    return None if span.parent is None else span.parent.span_id


class TestConcurrency:
    def test_interleaved_tasks_cancellation_errors_and_timeouts(self, traced: Traced) -> None:
        """60 tasks on every loop: each OTel span nests under its own task's harn span."""
        provider, exporter, _ = _provider()
        tracer = provider.get_tracer("t")

        parked = 0  # tasks waiting in their OTel span to be cancelled
        all_parked = asyncio.Event()

        async def job(index: int) -> None:
            nonlocal parked
            with span("step", f"job{index}"):
                await asyncio.sleep(0.001 * (index % 7))
                with tracer.start_as_current_span(f"otel{index}"):
                    if index % 5 == 0:
                        raise ValueError(index)
                    if index % 5 == 1:
                        async with asyncio.timeout(0.001):
                            await asyncio.sleep(1)
                    await asyncio.sleep(0.001 * (index % 3))
                    if index % 5 == 2:
                        parked += 1
                        if parked == 12:
                            all_parked.set()
                        await asyncio.sleep(10)  # cancelled below

        async def main() -> None:
            with span("pipeline", "main"):
                tasks = [asyncio.create_task(job(i)) for i in range(60)]
                await all_parked.wait()  # every task to cancel is inside its OTel span
                for index, task in enumerate(tasks):
                    if index % 5 == 2:
                        task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        with use_otel(provider):
            traced.run(main)
        records = {s.name: s for s in traced.collector.spans()}
        exported = list(exporter.get_finished_spans())
        assert traced.collector.open_span_count() == 0
        assert len(exported) == len(records) == 121
        for index in range(60):
            step, mirror = records[f"job{index}"], records[f"otel{index}"]
            assert mirror.parent_id == step.span_id
            assert _parent_of(exported, f"otel{index}") == otel_span_id(
                step.trace_id, step.span_id)
            # Errors and timeouts are errors; a cancelled OTel span just ends (OTel's rule).
            assert ("error" in mirror.metadata) is (index % 5 in (0, 1))
            assert (step.metadata.get("cancelled") is True) is (index % 5 == 2)

    def test_fan_out_and_spawned_tasks_keep_their_links(self, otel: Otel) -> None:
        """Parallel branches and spawned tasks are exported with their links, in one trace."""

        async def branch(index: int) -> None:
            await asyncio.sleep(0.001 * index)
            otel.tracer.start_span(f"call{index}").end()

        async def main() -> None:
            with span("pipeline", "main"):
                await traced_parallel([branch(i) for i in range(3)], name="fan")
                await traced_spawn(branch(9), name="job")

        asyncio.run(main())
        spans = otel.finished()
        assert len({s.context.trace_id for s in spans}) == 1
        by_id = {s.context.span_id: s for s in spans}
        linked = [s for s in spans if s.links]
        kinds = sorted(str((s.attributes or {})["harn.span.kind"]) for s in linked)
        assert kinds == ["spawn"] * 4
        for item in linked:
            for link in item.links:
                assert link.context.span_id in by_id
        records = {s.name: s for s in otel.collector.spans()}
        for index in (0, 1, 2, 9):
            parent = records[f"call{index}"].parent_id
            assert next(s for s in otel.collector.spans() if s.span_id == parent).kind.value == (
                "spawn")
