"""Both cores: selection, reference safety, GC, re-entrant callers, clocks, threads.

These run on whichever core the process uses (CI runs the suite on both),
so every trap the compiled core must handle (reference counts, calls back
into Python that reset the collector, the GC and open spans, deep chains)
is checked on it, and the pure core is held to the same behaviour.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Any

import pytest

import harn_async_trace as h
from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanHandle,
    SpanLink,
    install_override,
    span,
    subscribe,
    use_collector,
)
from harn_async_trace._core import ACCELERATED


def _accelerated_in_child(env: dict[str, str]) -> str:
    code = "import harn_async_trace as h; print(h.accelerated)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


class TestSelection:
    def test_harn_trace_pure_forces_the_fallback(self) -> None:
        """HARN_TRACE_PURE=1 gives the pure core; 0 or unset gives the compiled one if built."""
        env = {k: v for k, v in os.environ.items() if k != "HARN_TRACE_PURE"}
        assert _accelerated_in_child({**env, "HARN_TRACE_PURE": "1"}) == "False"
        built = _accelerated_in_child(env)
        assert _accelerated_in_child({**env, "HARN_TRACE_PURE": "0"}) == built
        assert h.accelerated is ACCELERATED
        assert isinstance(h.accelerated, bool)

    def test_the_handle_is_the_public_span_handle_type(self) -> None:
        """`with span()` gives a SpanHandle; with tracing off, always the same shared one."""
        with use_collector(SpanCollector()), span("step", "a") as handle:
            assert type(handle) is SpanHandle
        h.set_tracing_enabled(False)
        with span("step", "a") as first, span("step", "b") as second:
            assert first is second
            assert first.span_id == 0


_SUBINTERPRETERS = """
import _xxsubinterpreters as si
import harn_async_trace as h

interp = si.create()
si.run_string(interp, '''
import harn_async_trace as h
c = h.SpanCollector()
c.close(c.open("step", "in-sub"))
assert [s.name for s in c.spans()] == ["in-sub"]
''')
si.destroy(interp)
c = h.SpanCollector()
c.close(c.open("step", "in-main"))
print(h.accelerated, [s.name for s in c.spans()])
"""


class TestSubinterpreters:
    def test_each_interpreter_has_its_own_core(self) -> None:
        """A subinterpreter imports and uses the core beside the main one (no shared globals)."""
        pytest.importorskip("_xxsubinterpreters")
        done = subprocess.run([sys.executable, "-c", _SUBINTERPRETERS], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{ACCELERATED} ['in-main']"


class TestReferences:
    def test_arguments_are_not_leaked_or_freed(self) -> None:
        """Names, metadata values, links and attributes keep their reference counts."""
        name = "".join(["ref", "-name"])  # a fresh, non-interned object
        value = object()
        link = SpanLink("t", "1")
        attrs = {"a": object()}
        before = [sys.getrefcount(x) for x in (name, value, link, attrs["a"])]
        c = SpanCollector()

        def work() -> None:
            for _ in range(200):
                s = c.open("step", name, [link], metadata={"v": value})
                c.set_metadata(s, "w", value)
                c.record_event(s, "e", attrs)
                c.end(s)

        # In a context of its own: a context keeps its chain's last span.
        contextvars.copy_context().run(work)
        c.take_spans()
        c.reset()
        gc.collect()
        after = [sys.getrefcount(x) for x in (name, value, link, attrs["a"])]
        assert after == before

    def test_repeated_spans_do_not_grow_memory(self) -> None:
        """Opening, ending and taking 20k spans leaves no allocation behind."""
        c = SpanCollector()

        def burst() -> None:
            for _ in range(2_000):
                with use_collector(c), span("step", "x", k=1) as handle:
                    handle.record_event("e")
                c.end(c.open("fn_call", "y", [SpanLink("t", "1")]))
            c.take_spans()

        burst()
        gc.collect()
        tracemalloc.start()
        try:
            first = tracemalloc.get_traced_memory()[0]
            for _ in range(10):
                burst()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - first
        finally:
            tracemalloc.stop()
        assert grown < 64_000  # a leak of one object per span would be > 1 MB


class TestGarbageCollection:
    def test_finished_spans_are_not_gc_objects(self) -> None:
        """10k finished spans add (almost) nothing for the cyclic GC to track."""
        c = SpanCollector(max_spans=100_000)
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(10_000):
            c.close(c.open("step", "leaf"))
        gc.collect()
        assert len(gc.get_objects()) - before < 100
        assert c.finished_count() == 10_000

    def test_a_cycle_through_an_open_span_is_collected(self) -> None:
        """An open span whose metadata refers back to it is freed once unreachable."""
        freed: list[bool] = []

        class Marker:
            def __del__(self) -> None:
                freed.append(True)

        def make() -> None:
            c = SpanCollector()
            s = c.open("step", "cyclic")
            c.set_metadata(s, "collector", c)  # collector -> open span -> metadata -> collector
            c.set_metadata(s, "marker", Marker())

        contextvars.copy_context().run(make)  # the context (and its chain) goes too
        gc.collect()
        assert freed == [True]

    def test_deep_chains_are_freed_without_recursion_limits(self) -> None:
        """A 200k-deep chain of spans is freed without blowing the C stack."""
        c = SpanCollector(max_spans=0)

        def deep() -> None:
            for _ in range(200_000):
                c.open("fn_call", "d")
            c.reset()

        contextvars.copy_context().run(deep)
        assert c.open_span_count() == 0


class TestReentrancy:
    def test_a_clock_that_resets_the_collector_mid_open(self) -> None:
        """A clock that resets the collector while a span opens: a clear error, no damage."""
        c = SpanCollector()

        class Resetting(MockClock):
            armed = False

            def monotonic_ns(self) -> int:
                if self.armed:
                    self.armed = False
                    c.reset()
                return super().monotonic_ns()

        clock = Resetting()
        with install_override(clock):
            c.reset()
            ok = c.open("step", "ok")
            clock.armed = True
            with pytest.raises(RuntimeError, match="reset"):
                c.open("step", "during")
            assert not c.is_open(ok)  # abandoned by the reset
            after = c.open("step", "after")
            assert c.close(after)
        assert [s.name for s in c.spans()] == ["after"]

    def test_a_listener_that_ends_and_resets_inside_events(self) -> None:
        """Listeners may open, end and reset spans of the collector that is calling them."""
        c = SpanCollector()
        seen: list[str] = []

        def on_start(event: Any) -> None:
            if event.name == "outer":
                c.end(c.open("step", "from-listener"))

        def on_end(event: Any) -> None:
            seen.append(event.span.name)
            if event.span.name == "inner":
                c.reset()

        with subscribe(on_start=on_start, on_end=on_end):
            outer = c.open("pipeline", "outer")
            inner = c.open("step", "inner")
            c.close(inner)
            assert c.close(outer) is False  # abandoned by the listener's reset
        assert seen == ["from-listener", "inner"]
        assert c.spans() == []

    def test_keyboard_interrupt_from_a_start_listener_leaves_nothing_open(self) -> None:
        """A BaseException from a start listener escapes; the span is not left open."""
        c = SpanCollector()

        def on_start(event: Any) -> None:
            raise KeyboardInterrupt

        with subscribe(on_start=on_start), pytest.raises(KeyboardInterrupt):
            c.open("step", "a")
        assert c.open_span_count() == 0
        assert c.current_span_id() is None

    def test_str_of_an_exception_that_ends_the_span(self) -> None:
        """An exception whose __str__ ends the span it is recorded on is handled."""
        c = SpanCollector()

        class Sneaky(Exception):
            def __str__(self) -> str:
                c.end_open_spans()
                return "sneaky"

        with use_collector(c), pytest.raises(Sneaky), span("step", "s"):
            raise Sneaky
        assert [s.name for s in c.spans()] == ["s"]
        assert c.open_span_count() == 0


class TestClocks:
    def test_system_clock_times_equal_time_monotonic_ns(self) -> None:
        """A span's raw start lies between two time.monotonic_ns() reads around it."""
        c = SpanCollector()
        for _ in range(100):
            before = time.monotonic_ns()
            record = c.end(c.open("step", "t"))
            after = time.monotonic_ns()
            assert record is not None
            raw_start = record.start_ns + record._binding.base_ns
            assert before <= raw_start <= raw_start + record.duration_ns <= after

    def test_a_clock_that_raises_at_end_loses_only_that_span(self) -> None:
        """If the clock raises while a span ends, the error escapes and the span is gone."""

        class Failing(MockClock):
            fail = False

            def monotonic_ns(self) -> int:
                if self.fail:
                    raise OSError("clock broke")
                return super().monotonic_ns()

        clock = Failing()
        with install_override(clock):
            c = SpanCollector()
            s = c.open("step", "a")
            clock.fail = True
            with pytest.raises(OSError, match="clock broke"):
                c.close(s)
            clock.fail = False
            assert not c.is_open(s)
            assert c.current_span_id() is None
            c.close(c.open("step", "b"))
        assert [x.name for x in c.spans()] == ["b"]


class TestThreadsAndTasks:
    def test_threads_each_keep_their_own_chain(self) -> None:
        """8 threads nesting spans concurrently: every parent is the thread's own."""
        c = SpanCollector(max_spans=10**6)
        errors: list[str] = []

        def work(n: int) -> None:
            for _ in range(300):
                outer = c.open("step", f"t{n}")
                inner = c.open("fn_call", f"t{n}")
                if c.current_span_id() != inner:
                    errors.append("current")
                record = c.end(inner)
                if record is None or record.parent_id != outer:
                    errors.append("parent")
                c.close(outer)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert c.finished_count() == 8 * 600

    @pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
    def test_async_with_on_many_tasks_with_cancellation(self, loop: str) -> None:
        """`async with span()` in 500 interleaved tasks, some cancelled, failing or timed out."""
        c = SpanCollector()
        entered = 0
        all_inside = asyncio.Event()

        async def task(i: int) -> None:
            nonlocal entered
            async with span("step", f"outer{i}") as outer:
                await asyncio.sleep(0)
                async with span("fn_call", f"inner{i}") as inner:
                    entered += 1
                    if entered == 500:
                        all_inside.set()
                    assert c.current_span_id() == inner.span_id != outer.span_id
                    # Every seventh task waits here until main cancels it.
                    await asyncio.sleep(30 if i % 7 == 0 else 0)
                    if i % 5 == 0:
                        raise ValueError(i)
                    if i % 11 == 0:
                        async with asyncio.timeout(0):
                            await asyncio.sleep(1)

        async def main() -> None:
            tasks = [asyncio.create_task(task(i)) for i in range(500)]
            # Cancel only once every task is inside its inner span (not after a
            # real-time sleep, which a busy machine can outlast).
            await all_inside.wait()
            for t in tasks[::7]:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with use_collector(c):
            if loop == "uvloop":
                import uvloop

                uvloop.run(main())
            else:
                asyncio.run(main())
        spans = {s.name: s for s in c.spans()}
        assert len(spans) == 1000
        assert c.open_span_count() == 0
        for i in range(500):
            inner, outer = spans[f"inner{i}"], spans[f"outer{i}"]
            assert inner.parent_id == outer.span_id
            if i % 7 == 0:
                assert inner.metadata == {"cancelled": True}
            elif i % 5 == 0:
                assert inner.metadata == {"error": str(i), "error_type": "ValueError"}
            elif i % 11 == 0:  # asyncio.timeout: cancelled inside, TimeoutError outside
                assert inner.metadata == {"error": "", "error_type": "TimeoutError"}
            else:
                assert inner.metadata == {}
