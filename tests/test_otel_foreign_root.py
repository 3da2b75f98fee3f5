"""use_otel(): a harn root inside someone else's OTel span is in that span's trace, in harn too.

Every check compares the harn trace (``collector.spans()`` and its JSONL) with
what the real SDK exported (InMemorySpanExporter): the same trace id (the
32-hex form ``trace_id_hex`` gives), the same parents, and the
``relation=remote_parent`` link a continued trace's root carries.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from boundaries_support import run_on
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from harn_async_trace import Span, SpanCollector, SpanLink, span, traced_spawn, use_collector
from harn_async_trace._trace_id import trace_id_from_hex, trace_id_hex
from harn_async_trace.export import use_otel
from harn_async_trace.export._otel.mapping import REMOTE_PARENT, otel_span_id
from harn_async_trace.export.jsonl import read_jsonl, write_jsonl


@dataclass
class Bridge:
    collector: SpanCollector
    exporter: InMemorySpanExporter
    own: Any  # a tracer of the bridged provider: its spans are mirrored into harn
    foreign: Any  # a tracer of another provider: someone else's spans

    def exported(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def record(self, name: str) -> Span:
        (found,) = [s for s in self.collector.spans() if s.name == name]
        return found


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    collector = SpanCollector()
    with use_collector(collector), use_otel(provider):
        yield Bridge(collector, exporter, provider.get_tracer("tests.own"),
                     TracerProvider().get_tracer("tests.server"))


def _hex(trace_int: int) -> str:
    return f"{trace_int:032x}"


def _remote_link(context: Any) -> SpanLink:
    return SpanLink(trace_id_from_hex(_hex(context.trace_id)), str(context.span_id),
                    {"relation": REMOTE_PARENT})


def assert_one_trace(b: Bridge) -> None:
    """Each harn span, its JSONL line and its OTel span agree on trace, id and parent."""
    spans = b.collector.spans()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "trace.jsonl"
        write_jsonl(spans, path)
        lines = {line["span_id"]: line for line in map(json.loads, path.read_text().splitlines())}
        assert [s.trace_id for s in read_jsonl(path)] == [s.trace_id for s in spans]
    exported = b.exported()
    # Harn spans by the id the bridge stamps on them; mirrors are the OTel spans themselves.
    otel_of: dict[int, ReadableSpan] = {}
    for s in spans:
        (e,) = [e for e in exported if (e.attributes or {}).get("harn.span.id") == s.span_id
                ] or [e for e in exported if e.name == s.name]
        otel_of[s.span_id] = e
    for s in spans:
        e = otel_of[s.span_id]
        assert _hex(e.context.trace_id) == trace_id_hex(s.trace_id), s.name
        assert lines[s.span_id]["trace_id"] == s.trace_id
        if "harn.span.id" in (e.attributes or {}):
            assert e.context.span_id == otel_span_id(s.trace_id, s.span_id), s.name
        remote = [link for link in s.links if link.attributes.get("relation") == REMOTE_PARENT]
        if s.parent_id is not None:
            assert e.parent is not None, s.name
            assert e.parent.span_id == otel_of[s.parent_id].context.span_id, s.name
        elif remote:
            assert remote[0].trace_id == s.trace_id
            assert e.parent is not None, s.name
            assert e.parent.span_id == int(remote[0].span_id), s.name
        else:
            assert e.parent is None, s.name


class TestLiveRoots:
    def test_a_root_inside_a_foreign_span_is_in_its_trace(self, bridge: Bridge) -> None:
        """Root and children take the foreign trace id; the root links to the foreign span."""
        with bridge.foreign.start_as_current_span("GET /ask") as request:
            with span("pipeline", "handle"), span("step", "plan") as plan:
                link = plan.link()
        context = request.get_span_context()
        foreign_trace = trace_id_from_hex(_hex(context.trace_id))
        root, child = bridge.record("handle"), bridge.record("plan")
        assert (root.trace_id, child.trace_id) == (foreign_trace, foreign_trace)
        assert root.parent_id is None
        assert root.links == [_remote_link(context)]
        assert child.links == []
        assert child.parent_id == root.span_id
        assert link is not None
        assert link.trace_id == foreign_trace
        assert bridge.collector.trace_id != foreign_trace  # the collector's own trace is kept
        assert_one_trace(bridge)
        (exported_root,) = [e for e in bridge.exported() if e.name == "invoke_workflow handle"]
        assert exported_root.parent is not None
        # Under the span itself (not a remote stand-in built from the link), as before.
        assert (exported_root.parent.span_id, exported_root.parent.is_remote) == (
            context.span_id, False)

    def test_roots_outside_foreign_spans_keep_the_collector_trace(self, bridge: Bridge) -> None:
        """Before and after the foreign span, roots are in the collector's trace, unlinked."""
        with span("step", "before"):
            pass
        with bridge.foreign.start_as_current_span("GET /ask") as request:
            with span("step", "inside"):
                pass
        with span("step", "after"):
            pass
        own = bridge.collector.trace_id
        assert [(bridge.record(n).trace_id, bridge.record(n).links) for n in ("before", "after")
                ] == [(own, []), (own, [])]
        assert bridge.record("inside").trace_id == trace_id_from_hex(
            _hex(request.get_span_context().trace_id))
        assert_one_trace(bridge)

    def test_new_trace_inside_a_foreign_span_is_a_fresh_trace_in_both(self, bridge: Bridge) -> None:
        """new_trace=True asks for a trace of its own: harn and OTel both start one."""
        with bridge.foreign.start_as_current_span("GET /ask") as request:
            with span("step", "fresh", new_trace=True):
                pass
        fresh = bridge.record("fresh")
        assert fresh.links == []
        assert trace_id_hex(fresh.trace_id) != _hex(request.get_span_context().trace_id)
        assert_one_trace(bridge)

    def test_an_unsampled_foreign_span_still_names_the_trace(self) -> None:
        """The foreign span's sampling decision carries over; the harn trace id is still its."""
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        collector = SpanCollector()
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("tests.server")
        with use_collector(collector), use_otel(provider):
            with unsampled.start_as_current_span("GET /ask") as request:
                with span("step", "handle"):
                    pass
        (record,) = collector.spans()
        context = request.get_span_context()
        assert record.trace_id == trace_id_from_hex(_hex(context.trace_id))
        assert record.links == [_remote_link(context)]
        assert exporter.get_finished_spans() == ()  # ParentBased: not sampled, as its parent


class TestSpanIds:
    def test_two_collectors_in_one_foreign_trace_never_share_span_ids(self, bridge: Bridge) -> None:
        """As with continue_trace, ids restart from a random base: no two OTel span ids collide.

        (Two collectors stand for two processes: both count from 1, and the OTel
        span id is a hash of trace id and harn id.)
        """
        other = SpanCollector()
        with bridge.foreign.start_as_current_span("GET /ask") as request:
            with span("step", "a"), span("step", "a-child"):
                pass
            with use_collector(other), span("step", "b"), span("step", "b-child"):
                pass
        foreign_trace = trace_id_from_hex(_hex(request.get_span_context().trace_id))
        records = [*bridge.collector.spans(), *other.spans()]
        assert {s.trace_id for s in records} == {foreign_trace}
        assert len({s.span_id for s in records}) == 4
        assert min(s.span_id for s in records) > 1_000  # not counted from 1
        exported = [e for e in bridge.exported() if "harn.span.id" in (e.attributes or {})]
        assert len({e.context.span_id for e in exported}) == len(exported) == 4
        for s in records:
            (e,) = [e for e in exported if e.name == s.name]
            assert e.context.span_id == otel_span_id(s.trace_id, s.span_id)

    def test_ids_restart_once_per_collector_trace(self, bridge: Bridge) -> None:
        """The first foreign root restarts the ids; later ones count on; a reset restarts again."""
        with bridge.foreign.start_as_current_span("GET /1"):
            with span("step", "first"):
                pass
        with bridge.foreign.start_as_current_span("GET /2"):
            with span("step", "second"):
                pass
        first, second = bridge.record("first"), bridge.record("second")
        assert first.span_id > 1_000
        assert second.span_id == first.span_id + 1
        bridge.collector.reset()
        with bridge.foreign.start_as_current_span("GET /3"):
            with span("step", "third"):
                pass
        assert bridge.record("third").span_id > 1_000


class TestMirroredRoots:
    def test_an_otel_root_span_is_mirrored_in_its_own_trace(self, bridge: Bridge) -> None:
        """An OTel span with no parent and no harn span open: mirror and children in its trace."""
        with bridge.own.start_as_current_span("GET /own") as request:
            with span("step", "inside"), bridge.own.start_as_current_span("db"):
                pass
        otel_trace = trace_id_from_hex(_hex(request.get_span_context().trace_id))
        mirror, inside, db = (bridge.record(n) for n in ("GET /own", "inside", "db"))
        assert (mirror.trace_id, mirror.parent_id, mirror.links) == (otel_trace, None, [])
        assert (inside.trace_id, inside.parent_id) == (otel_trace, mirror.span_id)
        assert (db.trace_id, db.parent_id) == (otel_trace, inside.span_id)
        assert_one_trace(bridge)

    def test_an_otel_span_under_a_foreign_span_links_to_it(self, bridge: Bridge) -> None:
        """Mirrored with no harn parent inside a foreign trace: that trace, a remote_parent link."""
        with bridge.foreign.start_as_current_span("GET /ask") as request:
            bridge.own.start_span("cache.get").end()
        context = request.get_span_context()
        mirror = bridge.record("cache.get")
        assert mirror.trace_id == trace_id_from_hex(_hex(context.trace_id))
        assert mirror.links == [_remote_link(context)]
        assert_one_trace(bridge)

    def test_an_otel_span_under_a_harn_root_is_its_child(self, bridge: Bridge) -> None:
        """Under an open harn span a mirror is its child, in its (foreign) trace, unlinked."""
        with bridge.foreign.start_as_current_span("GET /ask") as request:
            with span("step", "outer"):
                bridge.own.start_span("cache.get").end()
        mirror, outer = bridge.record("cache.get"), bridge.record("outer")
        assert outer.trace_id == trace_id_from_hex(_hex(request.get_span_context().trace_id))
        assert (mirror.trace_id, mirror.parent_id, mirror.links) == (
            outer.trace_id, outer.span_id, [])
        assert_one_trace(bridge)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fifty_interleaved_tasks_never_mix_traces(bridge: Bridge, loop: str) -> None:
    """50 tasks, each inside its own foreign root span, all open at once: one trace each."""
    count = 50
    contexts: dict[int, Any] = {}

    async def main() -> None:
        entered = 0
        all_in = asyncio.Event()

        async def job(i: int) -> None:
            with span("step", f"in-job-{i}"):
                await asyncio.sleep(0)

        async def request(i: int) -> None:
            nonlocal entered
            with bridge.foreign.start_as_current_span(f"GET /{i}") as server:
                contexts[i] = server.get_span_context()
                with span("pipeline", f"handle-{i}"):
                    entered += 1
                    if entered == count:
                        all_in.set()
                    await all_in.wait()  # every root is open before any task goes on
                    with span("step", f"work-{i}"):
                        await traced_spawn(job(i), name=f"job-{i}")

        await asyncio.gather(*(request(i) for i in range(count)))

    run_on(loop, main)
    by_task: dict[int, set[str]] = {}
    for s in bridge.collector.spans():
        by_task.setdefault(int(s.name.rsplit("-", 1)[1]), set()).add(s.trace_id)
    assert len(by_task) == count
    for i, traces in by_task.items():
        assert traces == {trace_id_from_hex(_hex(contexts[i].trace_id))}, i
        assert bridge.record(f"handle-{i}").links == [_remote_link(contexts[i])]
    assert len({_hex(c.trace_id) for c in contexts.values()}) == count
    assert len(bridge.collector.spans()) == 4 * count
    assert_one_trace(bridge)
