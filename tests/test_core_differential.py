"""The compiled and the pure core, side by side in one process, give the same results.

Hypothesis draws sequences of core-interface calls (open with every flag,
close, end, metadata, events, renames, links, bind, reset, take_spans, adopted ids,
clock moves) and runs each sequence on both cores under their own mock
clocks; every return value, every exception and every finished span must
match. Skipped when the compiled core is not built (the pure core then has
nothing to be compared with).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harn_async_trace import MockClock, Span, SpanLink, install_override
from harn_async_trace._core import _ccore, _pure

pytestmark = pytest.mark.skipif(_ccore is None, reason="the compiled core is not built")

KINDS = ["step", "fn_call", "llm_call", "spawn", "not_a_kind"]
NAMES = ["a", "b", "é"]
KEYS = ["k", "model", "error"]

Op = tuple[Any, ...]

ops = st.one_of(
    st.tuples(
        st.just("open"), st.sampled_from(KINDS), st.sampled_from(NAMES),
        st.booleans(), st.booleans(), st.booleans(), st.booleans(),
        st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3), max_size=3)),
    ),
    st.tuples(st.just("close"), st.integers(0, 12), st.booleans()),
    st.tuples(st.just("end"), st.integers(0, 12)),
    st.tuples(st.just("set"), st.integers(0, 12), st.sampled_from([*KEYS, 7]), st.integers()),
    st.tuples(st.just("attach"), st.integers(0, 12), st.sampled_from(KEYS), st.integers()),
    st.tuples(st.just("event"), st.integers(0, 12), st.sampled_from(["e", 3])),
    st.tuples(st.just("rename"), st.one_of(st.integers(0, 12), st.just(True)),
              st.sampled_from(["r", "é", 3])),
    st.tuples(st.just("advance"), st.integers(0, 5_000_000)),
    st.tuples(st.just("current"),),
    st.tuples(st.just("link"), st.integers(0, 12)),
    st.tuples(st.just("details"), st.integers(0, 12)),
    st.tuples(st.just("innermost"), st.sets(st.integers(0, 12), max_size=4)),
    st.tuples(st.just("bind"), st.integers(0, 12)),
    st.tuples(st.just("unbind"),),
    st.tuples(st.just("reset"),),
    st.tuples(st.just("take"),),
    st.tuples(st.just("adopt"), st.integers(1, 50)),
    st.tuples(st.just("limit"), st.integers(0, 3)),
)


def _compiled() -> type[_pure.CoreCollector]:
    assert _ccore is not None  # the module is skipped otherwise
    compiled: type[_pure.CoreCollector] = _ccore.CoreCollector
    return compiled


def _span_key(span: Span) -> tuple[Any, ...]:
    return (*span._key(), span.lane, span.start_unix_ns)


def _value(result: Any) -> Any:
    if isinstance(result, Span):
        return _span_key(result)
    if isinstance(result, list):
        return [_value(item) for item in result]
    return result


class _Run:
    """One core driven through a sequence, in its own context and clock."""

    def __init__(self, core: type[_pure.CoreCollector]) -> None:
        self.clock = MockClock()
        self.context = contextvars.copy_context()
        self.core = core
        self.bindings: list[Any] = []
        with install_override(self.clock):
            self.collector = self.context.run(core)

    def call(self, fn: Callable[[], Any]) -> Any:
        with install_override(self.clock):
            try:
                return ("ok", _value(self.context.run(fn)))
            except Exception as exc:  # compared by type and message
                return ("raised", type(exc).__name__, str(exc))

    def apply(self, op: Op) -> Any:
        c, name = self.collector, op[0]
        if name == "open":
            _, kind, span_name, linked, detached, push, new_trace, metadata = op
            links = [SpanLink("trace_x", "1", {"r": "x"})] if linked else None
            return self.call(
                lambda: c.open(kind, span_name, links, detached, push, new_trace, metadata)
            )
        if name == "close":
            return self.call(lambda: c.close(op[1], op[2]))
        if name == "end":
            return self.call(lambda: c.end(op[1]))
        if name == "set":
            return self.call(lambda: c.set_metadata(op[1], op[2], op[3]))
        if name == "attach":
            return self.call(lambda: c.attach_metadata_if_absent(op[1], op[2], op[3]))
        if name == "event":
            return self.call(lambda: c.record_event(op[1], op[2], {"n": 1}))
        if name == "rename":
            return self.call(lambda: c.rename(op[1], op[2]))
        if name == "advance":
            self.clock.advance_ns(op[1])
            return None
        if name == "current":
            return self.call(c.current_span_id)
        if name == "link":
            return self.call(lambda: c.span_link(op[1]))
        if name == "details":
            return self.call(lambda: c.open_details(op[1]))
        if name == "innermost":
            return self.call(lambda: c.innermost_of(op[1]))
        if name == "bind":
            binding = c.bind(op[1])
            self.bindings.append(binding)
            return self.call(binding.__enter__)
        if name == "unbind":
            if not self.bindings:
                return None
            binding = self.bindings.pop()
            return self.call(lambda: binding.__exit__(None, None, None))
        if name == "reset":
            return self.call(c.reset)
        if name == "take":
            return self.call(c.take_spans)
        if name == "adopt":
            return self.call(lambda: c._restart_ids("trace_adopted", op[1]))
        if name == "limit":
            c.max_spans = op[1]
            c.max_metadata_per_span = op[1]
            c.max_events_per_span = op[1]
            c.max_links_per_span = op[1]
            return None
        raise AssertionError(op)

    def state(self) -> Any:
        c = self.collector
        return self.call(
            lambda: (
                c.spans(), c.open_span_count(), c.finished_count(), sorted(c._open_ids()),
                c.dropped_spans, c.dropped_events, c.dropped_links, c.dropped_metadata,
                c.current_span_id(), c._chain_length(), c.trace_id,
            )
        )


class TestDifferential:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(ops, max_size=40))
    def test_random_call_sequences_agree(self, sequence: list[Op]) -> None:
        """Every result, error and finished span is the same on both cores."""
        compiled, pure = _Run(_compiled()), _Run(_pure.CoreCollector)
        for step, op in enumerate(sequence):
            assert compiled.apply(op) == pure.apply(op), (step, op)
            assert compiled.state() == pure.state(), (step, op)

    def test_handles_behave_alike(self) -> None:
        """An open span's handle answers the same on both cores, before and after its end."""
        results = []
        for core in (_compiled(), _pure.CoreCollector):
            run = _Run(core)
            c = run.collector
            with install_override(run.clock):
                span_id = run.context.run(c.open, "step", "h")
                handle = c._handle(span_id)
                seen = [repr(handle), handle.span_id]
                handle.set_metadata("k", 1)
                seen.append(handle.record_event("e", attempt=2))
                seen.append(handle.link())
                c.close(span_id)
                handle.set_metadata("late", 1)
                seen += [handle.record_event("e"), handle.link()]
            seen.append(_span_key(c.spans()[0]))
            results.append(seen)
        assert results[0] == results[1]
