"""The cores' root-parent hook (``events._root_parent``): a root inside a trace that is not harn's.

Both cores (``make test`` / ``make test-pure``). The hook is what ``use_otel``'s
live export installs (tests/test_otel_foreign_root.py covers that end to end);
here it is a plain function, so each rule of the core is checked on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from boundaries_support import run_on

from harn_async_trace import SpanCollector, SpanLink, events, span, traced_spawn, use_collector
from harn_async_trace._trace_id import trace_id_from_hex
from harn_async_trace.export._otel.mapping import REMOTE_PARENT

FOREIGN = trace_id_from_hex("0af7651916cd43dd8448eb211c80319c")
REMOTE = SpanLink(FOREIGN, str(0xB7AD6B7169203331), {"relation": REMOTE_PARENT})

Hook = Callable[[Any], Any]


class Calls:
    """A hook answering ``answer`` that remembers which collectors asked."""

    def __init__(self, answer: Any = (FOREIGN, REMOTE)) -> None:
        self.answer = answer
        self.asked: list[Any] = []

    def __call__(self, collector: Any) -> Any:
        self.asked.append(collector)
        return self.answer


@pytest.fixture
def hook() -> Iterator[Calls]:
    calls = Calls()
    previous = events._set_root_parent(calls)
    yield calls
    events._set_root_parent(previous)


class TestRoots:
    def test_a_root_takes_the_hooks_trace_and_link(self, hook: Calls) -> None:
        """The root's trace id and its one link are the hook's; the collector's trace is kept."""
        c = SpanCollector()
        record = c.end(c.open("pipeline", "handle"))
        assert record is not None
        assert (record.trace_id, record.parent_id, record.links) == (FOREIGN, None, [REMOTE])
        assert c.trace_id != FOREIGN
        assert hook.asked == [c]

    def test_children_spawned_work_and_links_follow_the_root(self, hook: Calls) -> None:
        """Everything under the root is in its trace, and the hook is asked once (by the root)."""
        c = SpanCollector()
        root = c.open("pipeline", "root")
        child = c.open("step", "child")
        handed = c.open("spawn", "job", detached=True, push=False)
        with c.bind(handed):
            grandchild = c.open("step", "in-job")
        link = c.span_link(child)
        assert link is not None
        assert link.trace_id == FOREIGN
        for span_id in (grandchild, handed, child, root):
            assert c.close(span_id)
        assert {s.name: s.trace_id for s in c.spans()} == dict.fromkeys(
            ("in-job", "job", "child", "root"), FOREIGN)
        assert [s.links for s in c.spans() if s.name != "root"] == [[], [], []]
        assert hook.asked == [c]

    @pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
    def test_spawned_tasks_follow_the_root(self, hook: Calls, loop: str) -> None:
        """A task spawned under the root (and spans in it) stays in the root's trace."""
        c = SpanCollector()

        async def main() -> None:
            async def job() -> None:
                with span("step", "in-task"):
                    await asyncio.sleep(0)

            with span("pipeline", "root"):
                await traced_spawn(job(), name="job")

        with use_collector(c):
            run_on(loop, main)
        assert {s.name: s.trace_id for s in c.spans()} == dict.fromkeys(
            ("in-task", "job", "root"), FOREIGN)
        assert len(hook.asked) == 1

    def test_a_link_free_answer_sets_the_trace_only(self, hook: Calls) -> None:
        """``(trace_id, None)``: the root is in that trace, with no links."""
        hook.answer = (FOREIGN, None)
        c = SpanCollector()
        record = c.end(c.open("step", "root"))
        assert record is not None
        assert (record.trace_id, record.links) == (FOREIGN, [])

    def test_none_is_an_ordinary_root(self, hook: Calls) -> None:
        """A hook that answers None changes nothing."""
        hook.answer = None
        c = SpanCollector()
        record = c.end(c.open("step", "root"))
        assert record is not None
        assert (record.trace_id, record.links) == (c.trace_id, [])
        assert hook.asked == [c]


class TestNotAsked:
    def test_roots_with_links_or_new_trace_do_not_ask(self, hook: Calls) -> None:
        """A root that names its own links (a continued trace) or a new trace keeps that."""
        c = SpanCollector()
        own = SpanLink(c.trace_id, "7")
        linked = c.end(c.open("step", "linked", [own]))
        fresh = c.end(c.open("step", "fresh", new_trace=True))
        assert linked is not None
        assert fresh is not None
        assert (linked.trace_id, linked.links) == (c.trace_id, [own])
        assert fresh.trace_id not in (c.trace_id, FOREIGN)
        assert fresh.links == []
        assert hook.asked == []
        plain = c.end(c.open("step", "plain"))  # the control: a bare root is asked
        assert plain is not None
        assert plain.trace_id == FOREIGN
        assert hook.asked == [c]

    def test_detached_spans_under_an_open_span_do_not_ask(self) -> None:
        """Only a span with no open harn span above it is a root the hook is asked about."""
        c = SpanCollector()
        outer = c.open("pipeline", "outer")  # before the hook: an ordinary root
        calls = Calls()
        previous = events._set_root_parent(calls)
        try:
            detached = c.end(c.open("spawn", "job", detached=True))
            assert calls.asked == []
            c.close(outer)
            root = c.end(c.open("spawn", "job", detached=True))  # nothing open above it now
        finally:
            events._set_root_parent(previous)
        assert detached is not None
        assert detached.trace_id == c.trace_id
        assert root is not None
        assert root.trace_id == FOREIGN
        assert calls.asked == [c]


class TestBadHooks:
    @pytest.mark.parametrize("answer", [5, (FOREIGN,), (1, None), (FOREIGN, "link"),
                                        [FOREIGN, None]])
    def test_a_malformed_answer_is_a_type_error(self, hook: Calls, answer: Any) -> None:
        """Anything but None or (str, SpanLink | None) is refused, and no span is left open."""
        hook.answer = answer
        c = SpanCollector()
        with pytest.raises(TypeError, match="root-parent hook must return None or"):
            c.open("step", "root")
        assert c.open_span_count() == 0

    def test_an_error_in_the_hook_propagates(self) -> None:
        """The hook's own exception reaches the caller of open (the export guards its hook)."""

        def broken(collector: Any) -> Any:
            raise LookupError("no context")

        previous = events._set_root_parent(broken)
        try:
            c = SpanCollector()
            with pytest.raises(LookupError, match="no context"):
                c.open("step", "root")
            assert c.open_span_count() == 0
        finally:
            events._set_root_parent(previous)

    def test_a_hook_that_resets_the_collector(self) -> None:
        """A reset inside the hook is noticed, as a reset by a clock is."""

        def resetting(collector: Any) -> Any:
            collector.reset()
            return None

        previous = events._set_root_parent(resetting)
        try:
            c = SpanCollector()
            with pytest.raises(RuntimeError, match="reset while a span was being opened"):
                c.open("step", "root")
            assert c.open_span_count() == 0
        finally:
            events._set_root_parent(previous)

    def test_links_whose_truth_test_removes_the_hook(self) -> None:
        """The hook is read again after links run Python code: the removed one is never called."""

        class Sneaky(list[SpanLink]):
            def __len__(self) -> int:
                events._set_root_parent(None)  # drops the only reference to the hook below
                return 0

        calls: list[object] = []
        events._set_root_parent(lambda c: calls.append(c))
        c = SpanCollector()
        record = c.end(c.open("step", "root", Sneaky()))
        assert record is not None
        assert (record.trace_id, record.links, calls) == (c.trace_id, [], [])

    def test_only_callables_or_none(self) -> None:
        with pytest.raises(TypeError, match="hook must be callable or None"):
            events._set_root_parent("nope")  # type: ignore[arg-type]  # the error under test
