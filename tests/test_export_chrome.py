"""Chrome trace event export, validated against the trace event format."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from boundaries_support import run_on
from export_trace_builders import rich_trace

from harn_async_trace import MockClock, Span, SpanCollector, SpanLink, install_override
from harn_async_trace.export import chrome_trace_events, write_chrome_trace
from harn_async_trace.export._lanes import layout_lanes

LOOPS = ["asyncio", "uvloop"]
Lane = tuple[int, int]


def _ns(us: float) -> int:
    return round(us * 1000)


def validate_trace_event_file(doc: Any) -> dict[str, Any]:
    """Check a Chrome trace (JSON object format) and return what it found.

    Rules from the Trace Event Format spec: X events need ts/dur/pid/tid and
    must nest strictly on each (pid, tid); flow start ``s`` and finish ``f``
    pair up by (cat, id); each binds to a slice enclosing its ts on its own
    thread; ``f`` uses ``bp: "e"``; instant events have a scope.
    """
    assert isinstance(doc, dict)
    events = doc["traceEvents"]
    assert isinstance(events, list)
    slices: dict[Lane, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
    flows: dict[tuple[str, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    names: dict[Lane, str] = {}
    for ev in events:
        ph = ev["ph"]
        assert ph in {"X", "s", "f", "i", "M"}, ev
        assert isinstance(ev["pid"], int)
        assert isinstance(ev["tid"], int)
        assert isinstance(ev["name"], str)
        if ph == "M":
            assert ev["name"] in {"process_name", "thread_name", "thread_sort_index"}
            if ev["name"] == "thread_name":
                names[(ev["pid"], ev["tid"])] = ev["args"]["name"]
            continue
        assert isinstance(ev["ts"], int | float)
        assert ev["ts"] >= 0
        if ph == "X":
            assert isinstance(ev["dur"], int | float)
            assert ev["dur"] >= 0
            assert isinstance(ev["cat"], str)
            assert isinstance(ev["args"], dict)
            start = _ns(ev["ts"])
            slices[(ev["pid"], ev["tid"])].append((start, start + _ns(ev["dur"]), ev))
        elif ph in {"s", "f"}:
            assert isinstance(ev["id"], int)
            key = (ev["cat"], ev["id"])
            assert ph not in flows[key], f"duplicate flow {ph} for {key}"
            flows[key][ph] = ev
            if ph == "f":
                assert ev["bp"] == "e"
        else:
            assert ev["s"] in {"g", "p", "t"}
    for lane, items in slices.items():
        items.sort(key=lambda item: (item[0], -item[1]))
        stack: list[tuple[int, int, dict[str, Any]]] = []
        for start, end, ev in items:
            while stack and start >= stack[-1][1] and not (start == end == stack[-1][1]):
                stack.pop()
            if stack:
                top = stack[-1][2]["name"]
                assert end <= stack[-1][1], f"{ev['name']} overlaps {top} on {lane}"
            stack.append((start, end, ev))
        assert lane in names, f"lane {lane} has no thread_name"

    def enclosing(ev: dict[str, Any]) -> set[int]:
        ts = _ns(ev["ts"])
        lane = slices[(ev["pid"], ev["tid"])]
        spans = {s[2]["args"]["span_id"] for s in lane if s[0] <= ts <= s[1]}
        assert spans, f"flow {ev['ph']} {ev['id']} at {ts} binds to no slice"
        return spans

    pairs = []
    for key, ends in flows.items():
        assert set(ends) == {"s", "f"}, f"flow {key} is missing its {'f' if 's' in ends else 's'}"
        assert ends["s"]["name"] == ends["f"]["name"]
        pairs.append((enclosing(ends["s"]), enclosing(ends["f"]), ends["s"]["name"]))
    return {"slices": slices, "flows": pairs, "lane_names": names}


def _load(spans: list[Span], **kwargs: Any) -> dict[str, Any]:
    buf = io.StringIO()
    count = write_chrome_trace(spans, buf, **kwargs)
    doc: dict[str, Any] = json.loads(buf.getvalue())
    assert len(doc["traceEvents"]) == count
    return doc


def _lane_of(doc: dict[str, Any]) -> dict[int, Lane]:
    return {
        ev["args"]["span_id"]: (ev["pid"], ev["tid"])
        for ev in doc["traceEvents"]
        if ev["ph"] == "X"
    }


class TestFormat:
    def test_rich_trace_is_valid(self) -> None:
        """The reference trace validates; one X per span with exact µs times and metadata."""
        _, spans = rich_trace()
        doc = _load(spans)
        found = validate_trace_event_file(doc)
        xs = {ev["args"]["span_id"]: ev for ev in doc["traceEvents"] if ev["ph"] == "X"}
        assert len(xs) == len(spans)
        for span in spans:
            ev = xs[span.span_id]
            assert (ev["name"], ev["cat"]) == (span.name, span.kind.value)
            assert _ns(ev["ts"]) == span.start_ns
            assert _ns(ev["dur"]) == span.duration_ns
            assert ev["args"].get("parent_id") == span.parent_id
            assert ev["args"].get("metadata", {}) == json.loads(json.dumps(span.metadata))
        assert doc["otherData"]["unresolved_links"] == 0
        assert doc["otherData"]["flows"] == len(found["flows"])

    def test_flow_arrow_for_every_link(self) -> None:
        """Each link (spawn, pool, channel) is one arrow from the linked span to the linking one."""
        _, spans = rich_trace()
        found = validate_trace_event_file(_load(spans))
        by_id = {s.span_id: s for s in spans}
        expected = sorted(
            (int(link.span_id), span.span_id, link.attributes.get("relation", "link"))
            for span in spans
            for link in span.links
        )
        # An endpoint binds to the deepest slice at its ts; the linked span must enclose it.
        drawn = sorted(
            (src, dst, name)
            for src_ids, dst_ids, name in found["flows"]
            for src in src_ids
            for dst in dst_ids
            if (src, dst, name) in set(expected)
        )
        assert drawn == expected
        assert len(found["flows"]) == len(expected)
        kinds = sorted((by_id[s].kind.value, by_id[d].kind.value) for s, d, _ in expected)
        assert kinds == [
            ("channel_emit", "channel_match"),
            ("channel_emit", "channel_match"),
            ("pipeline", "spawn"),
            ("pool_submit", "pool_dequeue"),
        ]

    def test_span_events_become_instant_events(self) -> None:
        """A SpanEvent is an 'i' event on its span's lane at start + offset."""
        _, spans = rich_trace()
        doc = _load(spans)
        (instant,) = [ev for ev in doc["traceEvents"] if ev["ph"] == "i"]
        chat = next(s for s in spans if s.name == "chat")
        assert instant["name"] == "first_token"
        assert instant["args"] == {"index": 1}
        assert _ns(instant["ts"]) == chat.start_ns + chat.events[0].offset_ms * 1_000_000
        assert (instant["pid"], instant["tid"]) == _lane_of(doc)[chat.span_id]

    def test_unresolved_links_are_counted_not_drawn(self) -> None:
        """A link to a span outside the export (remote, or dropped) draws nothing."""
        c = SpanCollector()
        links = [SpanLink("trace_elsewhere", "5"), SpanLink("t", "x")]
        c.end(c.start_with_links("step", "a", links))
        doc = _load(c.spans())
        validate_trace_event_file(doc)
        assert doc["otherData"]["unresolved_links"] == 2
        assert not [ev for ev in doc["traceEvents"] if ev["ph"] in {"s", "f"}]

    def test_empty_and_events_iterator(self) -> None:
        """No spans gives a valid empty file; chrome_trace_events yields the same events."""
        assert validate_trace_event_file(_load([]))["slices"] == {}
        _, spans = rich_trace()
        assert list(chrome_trace_events(spans)) == _load(spans)["traceEvents"]

    def test_writes_to_path(self, tmp_path: Path) -> None:
        """A path target is created and holds the same document."""
        _, spans = rich_trace()
        path = tmp_path / "trace.json"
        write_chrome_trace(spans, path)
        assert json.loads(path.read_text()) == _load(spans)


class TestLanes:
    def test_one_lane_per_task(self) -> None:
        """The spawned task gets its own lane; children share their task's lane."""
        _, spans = rich_trace()
        doc = _load(spans)
        lane = _lane_of(doc)
        by_name = {s.name: s for s in spans}
        main, worker = by_name["main"], by_name["worker"]
        assert lane[worker.span_id] != lane[main.span_id]
        assert lane[by_name["s1"].span_id] == lane[worker.span_id]
        for name in ("a", "chat", "grep", "b1", "boom", "short"):
            assert lane[by_name[name].span_id] == lane[main.span_id], name
        detached = [s for s in spans if s.parent_id is None]
        assert len({lane[s.span_id] for s in detached}) == len(detached)
        names = validate_trace_event_file(doc)["lane_names"]
        assert names[lane[worker.span_id]] == "task spawn worker"

    def test_overlapping_siblings_and_late_child_spill(self) -> None:
        """Siblings that overlap, and a child outliving its parent, go to lanes of their own."""
        _, spans = rich_trace()
        lane = _lane_of(_load(spans))
        by_name = {s.name: s for s in spans}
        assert lane[by_name["b2"].span_id] != lane[by_name["b1"].span_id]
        assert lane[by_name["late"].span_id] != lane[by_name["short"].span_id]

    def test_recorded_lane_splits_a_child_of_another_task(self) -> None:
        """A child recorded in another task's lane than its parent's gets a lane of its own."""
        def mk(span_id: int, parent: int | None, lane: int) -> Span:
            return Span(trace_id="t", span_id=span_id, parent_id=parent, kind="step",
                        name=f"s{span_id}", start_ms=span_id, start_unix_ms=span_id,
                        duration_ms=10 - span_id, lane=lane)  # fmt: skip
        together = layout_lanes([mk(1, None, 1), mk(2, 1, 1), mk(3, 2, 1)])
        assert len(set(together.lane)) == 1
        split = layout_lanes([mk(1, None, 1), mk(2, 1, 1), mk(3, 2, 3)])
        assert split.lane[2] != split.lane[1] == split.lane[0]
        # One span without a lane (an old file): the tree alone decides.
        old = layout_lanes([mk(1, None, 1), mk(2, 1, 1), mk(3, 2, 0)])
        assert len(set(old.lane)) == 1

    def test_reuse_lanes_packs_sequential_tasks(self) -> None:
        """With reuse_lanes, tasks that never overlap share one lane; the file stays valid."""
        clock = MockClock()
        with install_override(clock):
            c = SpanCollector()
            root = c.start("pipeline", "main")
            for i in range(20):
                s = c.open("spawn", f"t{i}", None, detached=True, push=False)
                clock.advance_ns(1000)
                c.end(s)
            c.end(root)
        separate = _load(c.spans())
        packed = _load(c.spans(), reuse_lanes=True)
        validate_trace_event_file(separate)
        validate_trace_event_file(packed)
        assert len(set(_lane_of(separate).values())) == 21
        assert len(set(_lane_of(packed).values())) == 2

    def test_multiple_traces_become_processes(self) -> None:
        """Spans of two collectors land in two pids."""
        a, b = SpanCollector(), SpanCollector()
        a.end(a.start("step", "x"))
        b.end(b.start("step", "y"))
        doc = _load(a.spans() + b.spans())
        validate_trace_event_file(doc)
        pids = {ev["name"]: ev["pid"] for ev in doc["traceEvents"] if ev["ph"] == "X"}
        assert pids == {"x": 1, "y": 2}

    def test_cyclic_parent_ids_do_not_hang(self) -> None:
        """Malformed input (parent cycle, self-parent) still exports every span."""
        spans = [
            Span(trace_id="t", span_id=1, parent_id=2, kind="step", name="a", start_ms=0,
                 start_unix_ms=0, duration_ms=5),
            Span(trace_id="t", span_id=2, parent_id=1, kind="step", name="b", start_ms=1,
                 start_unix_ms=1, duration_ms=1),
            Span(trace_id="t", span_id=3, parent_id=3, kind="step", name="c", start_ms=0,
                 start_unix_ms=0, duration_ms=1),
        ]
        assert len(_lane_of(_load(spans))) == 3

    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_many_real_tasks_nest_on_each_lane(self, loop_name: str) -> None:
        """300 interleaved tasks (spawned and gathered, some failing/cancelled) validate."""

        async def main() -> list[Span]:
            clock = MockClock()
            with install_override(clock):
                c = SpanCollector()
                root = c.start("pipeline", "main")

                async def work(i: int) -> None:
                    sid = c.start("fn_call", f"f{i}")
                    try:
                        for _ in range(i % 4):
                            clock.advance_ns(1_000 + i)
                            await asyncio.sleep(0)
                        if i % 11 == 0:
                            raise ValueError(i)
                    finally:
                        c.end(sid)

                def spawn(i: int) -> asyncio.Task[None]:
                    link = c.current_span_link()
                    s = c.open(
                        "spawn", f"t{i}", [link] if link else None, detached=True, push=False
                    )
                    ctx = contextvars.copy_context()
                    ctx.run(c.bind(s).__enter__)

                    async def body() -> None:
                        try:
                            await work(i)
                        finally:
                            c.end(s)

                    return asyncio.create_task(body(), context=ctx)

                tasks = [spawn(i) for i in range(150)]
                gathered = asyncio.gather(*(work(1000 + i) for i in range(150)),
                                          return_exceptions=True)
                await asyncio.sleep(0)
                for t in tasks[::37]:
                    t.cancel()
                await asyncio.gather(*tasks, gathered, return_exceptions=True)
                c.end(root)
                return c.spans()

        spans = run_on(loop_name, main)
        doc = _load(spans)
        found = validate_trace_event_file(doc)
        assert len(_lane_of(doc)) == len(spans)
        assert len(found["flows"]) == 150


class TestRealBoundaries:
    @pytest.mark.parametrize("loop_name", LOOPS)
    def test_spawn_parallel_pool_channel_arrows(self, loop_name: str) -> None:
        """Spans from the real boundaries validate, with one arrow per link on each loop."""
        from harn_async_trace import (
            TracedChannel,
            TracedPool,
            span,
            traced_parallel,
            traced_spawn,
            use_collector,
        )

        async def main() -> list[Span]:
            clock = MockClock()
            with install_override(clock):
                c = SpanCollector()
                with use_collector(c), span("pipeline", "main"):

                    async def job(i: int) -> int:
                        clock.advance_ns(1_000 * (i + 1))
                        await asyncio.sleep(0)
                        return i

                    spawned = [traced_spawn(job(i), name=f"bg{i}") for i in range(3)]
                    await traced_parallel([job(i) for i in range(4)], max_concurrent=2)
                    async with TracedPool(2, 10, name="pool") as pool:
                        futures = [pool.submit(job, i) for i in range(5)]
                        await asyncio.gather(*futures)
                    channel = TracedChannel("events")
                    channel.trigger(lambda values: None, name="batch", batch_size=2)
                    for i in range(4):
                        await channel.emit(i)
                    await channel.aclose()
                    await asyncio.gather(*spawned)
                return c.spans()

        spans = run_on(loop_name, main)
        doc = _load(spans)
        found = validate_trace_event_file(doc)
        links = sum(len(s.links) for s in spans)
        kinds = {s.kind.value for s in spans}
        assert {"spawn", "parallel", "pool_submit", "pool_dequeue"} <= kinds
        assert {"channel_emit", "channel_match"} <= kinds
        assert links >= 3 + 4 + 5 + 4
        assert len(found["flows"]) == links
        assert doc["otherData"]["unresolved_links"] == 0
        lane = _lane_of(doc)
        roots = [s for s in spans if s.parent_id is None]
        assert len({lane[s.span_id] for s in roots}) == len(roots)


class TestLaneProperties:
    @staticmethod
    def _random_spans(data: Any) -> list[Span]:
        from hypothesis import strategies as st

        n = data.draw(st.integers(min_value=1, max_value=40))
        spans = []
        for i in range(1, n + 1):
            parent = data.draw(st.one_of(st.none(), st.integers(min_value=1, max_value=n)))
            start = data.draw(st.integers(min_value=0, max_value=50))
            duration = data.draw(st.integers(min_value=0, max_value=30))
            links = [
                SpanLink("t", str(target))
                for target in data.draw(
                    st.lists(st.integers(min_value=1, max_value=n + 2), max_size=3)
                )
            ]
            spans.append(Span(
                trace_id="t", span_id=i, parent_id=parent if parent != i else None,
                kind="step", name=f"s{i}", start_ms=0, start_unix_ms=0, duration_ms=0,
                start_ns=start * 1000, duration_ns=duration * 1000, links=links,
            ))  # fmt: skip
        return spans

    def test_any_forest_validates(self) -> None:
        """Random parents (cycles too), overlapping times and links always give a valid file."""
        from hypothesis import given, settings
        from hypothesis import strategies as st

        @settings(max_examples=300, deadline=None)
        @given(st.data(), st.booleans())
        def check(data: Any, reuse: bool) -> None:
            spans = self._random_spans(data)
            doc = _load(spans, reuse_lanes=reuse)
            found = validate_trace_event_file(doc)
            assert len(_lane_of(doc)) == len(spans)
            ids = {s.span_id for s in spans}
            resolvable = sum(int(ln.span_id) in ids for s in spans for ln in s.links)
            assert len(found["flows"]) == resolvable
            assert doc["otherData"]["unresolved_links"] == sum(len(s.links) for s in spans) - (
                resolvable
            )

        check()

    def test_validator_catches_a_lane_that_does_not_nest(self) -> None:
        """The validator itself fails on overlapping slices and unpaired flows (it can fail)."""
        base = {"ph": "X", "cat": "step", "pid": 1, "tid": 1, "args": {"span_id": 1}}
        names = {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "x"}}
        overlapping = {"traceEvents": [
            names, {**base, "name": "a", "ts": 0, "dur": 10}, {**base, "name": "b", "ts": 5,
                                                               "dur": 10},
        ]}  # fmt: skip
        with pytest.raises(AssertionError, match="overlaps"):
            validate_trace_event_file(overlapping)
        unpaired = {"traceEvents": [
            names, {**base, "name": "a", "ts": 0, "dur": 10},
            {"name": "l", "cat": "link", "ph": "s", "id": 1, "ts": 1, "pid": 1, "tid": 1},
        ]}  # fmt: skip
        with pytest.raises(AssertionError, match="missing its f"):
            validate_trace_event_file(unpaired)
