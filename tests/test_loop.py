"""loop.py: the virtual loop's timers, their order and moving time (asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st
from loop_support import now_ms, run_virtual

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    active_mock_clock,
    advance_time,
    span,
    use_collector,
    virtual_loop_factory,
)
from harn_async_trace.loop import run


class TestSleepAndTimeouts:
    def test_hour_long_sleep_is_instant_and_span_is_exact(self, use_uvloop: bool) -> None:
        """sleep(3600) takes well under a second and its span says exactly 3_600_000 ms."""
        collector = SpanCollector()

        async def main() -> None:
            with use_collector(collector):
                async with span(SpanKind.STEP, "wait"):
                    await asyncio.sleep(3600)

        real_start = time.perf_counter()
        run_virtual(use_uvloop, main)
        assert time.perf_counter() - real_start < 1.0
        (only,) = collector.spans()
        assert only.duration_ms == 3_600_000
        assert only.duration_ns == 3_600 * 1_000_000_000

    def test_asyncio_timeout_fires_at_virtual_deadline(self, use_uvloop: bool) -> None:
        """asyncio.timeout(3) around sleep(5) raises at exactly 3000 ms."""

        async def main() -> int:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(3):
                    await asyncio.sleep(5)
            return now_ms()

        assert run_virtual(use_uvloop, main) == 3_000

    def test_wait_for_times_out_at_virtual_deadline(self, use_uvloop: bool) -> None:
        """wait_for(sleep(10), 2.5) raises TimeoutError at 2500 ms and cancels the sleep."""

        async def main() -> tuple[int, bool]:
            inner = asyncio.ensure_future(asyncio.sleep(10))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(inner, 2.5)
            return now_ms(), inner.cancelled()

        assert run_virtual(use_uvloop, main) == (2_500, True)

    def test_timeout_does_not_fire_when_work_finishes_first(self, use_uvloop: bool) -> None:
        """A task still runnable is never skipped past: timeout(2) around sleep(1) succeeds."""

        async def main() -> int:
            async with asyncio.timeout(2):
                await asyncio.sleep(1)
                await asyncio.sleep(0.5)
            await asyncio.sleep(0)
            return now_ms()

        assert run_virtual(use_uvloop, main) == 1_500

    def test_call_later_and_call_at_run_on_mock_time(self, use_uvloop: bool) -> None:
        """call_later/call_at fire when loop.time() (== mock seconds) reaches them."""

        async def main() -> list[tuple[str, float, int]]:
            loop = asyncio.get_running_loop()
            fired: list[tuple[str, float, int]] = []
            done = loop.create_future()
            loop.call_later(2, lambda: fired.append(("later", loop.time(), now_ms())))
            loop.call_at(loop.time() + 1, lambda: fired.append(("at", loop.time(), now_ms())))
            loop.call_later(3, done.set_result, None)
            await done
            return fired

        assert run_virtual(use_uvloop, main) == [("at", 1.0, 1_000), ("later", 2.0, 2_000)]

    def test_timer_handles_report_when_and_cancel(self, use_uvloop: bool) -> None:
        """Handles have when() in loop time, and cancelled ones never run."""

        async def main() -> tuple[float, list[int]]:
            loop = asyncio.get_running_loop()
            ran: list[int] = []
            keep = loop.call_later(5, ran.append, 1)
            drop = loop.call_later(4, ran.append, 2)
            drop.cancel()
            await asyncio.sleep(10)
            return keep.when(), ran

        assert run_virtual(use_uvloop, main) == (5.0, [1])

    def test_infinite_delay_never_fires_and_does_not_jump(self, use_uvloop: bool) -> None:
        """call_later(inf) is never jumped to; other timers still work."""

        async def main() -> int:
            loop = asyncio.get_running_loop()
            loop.call_later(float("inf"), pytest.fail)
            await asyncio.sleep(7)
            return now_ms()

        assert run_virtual(use_uvloop, main) == 7_000

    def test_fractional_sleeps_accumulate_without_drift(self, use_uvloop: bool) -> None:
        """A thousand sleep(0.001) calls end at exactly 1 s (integer ns inside)."""

        async def main() -> int:
            for _ in range(1_000):
                await asyncio.sleep(0.001)
            clock = active_mock_clock()
            assert clock is not None
            return clock.monotonic_ns()

        assert run_virtual(use_uvloop, main) == 1_000_000_000


class TestOrdering:
    def test_equal_deadlines_run_fifo(self, use_uvloop: bool) -> None:
        """Callbacks due at one instant run in scheduling order (call_at and call_later mixed)."""

        async def main() -> list[int]:
            loop = asyncio.get_running_loop()
            order: list[int] = []
            for i in range(200):
                if i % 3:
                    loop.call_later(1, order.append, i)
                else:
                    loop.call_at(1.0, order.append, i)
            await asyncio.sleep(2)
            return order

        assert run_virtual(use_uvloop, main) == list(range(200))

    def test_ten_thousand_tasks_with_staggered_sleeps(self, use_uvloop: bool) -> None:
        """10k tasks each wake at exactly their own deadline, in deadline order."""
        woke: list[tuple[int, int]] = []

        async def sleeper(i: int) -> None:
            await asyncio.sleep(3600 + (i % 100))
            woke.append((now_ms(), i))

        async def main() -> int:
            await asyncio.gather(*(sleeper(i) for i in range(10_000)))
            return now_ms()

        real_start = time.perf_counter()
        assert run_virtual(use_uvloop, main) == (3600 + 99) * 1000
        assert time.perf_counter() - real_start < 20
        assert len(woke) == 10_000
        assert all(ms == (3600 + i % 100) * 1000 for ms, i in woke)
        assert [ms for ms, _ in woke] == sorted(ms for ms, _ in woke)
        # Within one deadline, tasks wake in the order they went to sleep.
        by_deadline: dict[int, list[int]] = {}
        for ms, i in woke:
            by_deadline.setdefault(ms, []).append(i)
        assert all(ids == sorted(ids) for ids in by_deadline.values())

    def test_callbacks_added_by_a_due_timer_run_as_on_a_real_loop(self, use_uvloop: bool) -> None:
        """A timer scheduling another for 'now' does not starve the loop; the order is the real one.

        Stock asyncio runs the ``call_soon`` first (the zero-delay timer is
        moved to the ready queue on the next pass); uvloop makes a zero delay
        a ``call_soon`` itself.
        """

        async def main() -> list[str]:
            loop = asyncio.get_running_loop()
            order: list[str] = []

            def first() -> None:
                order.append("first")
                loop.call_later(0, order.append, "chained")
                loop.call_soon(order.append, "soon")

            loop.call_later(0.01, first)
            await asyncio.sleep(0.02)
            return order

        real = uvloop.new_event_loop if use_uvloop else asyncio.new_event_loop
        with asyncio.Runner(loop_factory=real) as runner:
            expected = runner.run(main())
        uvloop_order, stock_order = ["first", "chained", "soon"], ["first", "soon", "chained"]
        assert expected == (uvloop_order if use_uvloop else stock_order)
        assert run_virtual(use_uvloop, main) == expected


@settings(max_examples=25, deadline=None)
@given(
    delays_ms=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=60),
    use_uvloop=st.booleans(),
)
def test_timer_heap_orders_by_deadline_then_fifo(delays_ms: list[int], use_uvloop: bool) -> None:
    """Any batch of timers fires sorted by (deadline, scheduling order), each at its deadline."""

    async def main() -> list[tuple[int, int, int]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[int, int, int]] = []
        def record(delay: int, index: int) -> None:
            fired.append((delay, index, now_ms()))

        for index, delay in enumerate(delays_ms):
            loop.call_later(delay / 1000, record, delay, index)
        await asyncio.sleep(1)
        return fired

    fired = run_virtual(use_uvloop, main)
    expected = sorted((d, i) for i, d in enumerate(delays_ms))
    assert [(d, i) for d, i, _ in fired] == expected
    assert all(at == d for d, _, at in fired)


class TestAdvanceTime:
    def test_advance_time_in_a_task_fires_due_timers(self, use_uvloop: bool) -> None:
        """advance_time from a task moves time and the timers it passes fire, with no extra jump."""

        async def main() -> tuple[bool, bool, int]:
            sleeper = asyncio.ensure_future(asyncio.sleep(10))
            await asyncio.sleep(0)
            advance_time(5)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            early = sleeper.done()
            advance_time(5)
            await sleeper
            return early, sleeper.done(), now_ms()

        assert run_virtual(use_uvloop, main) == (False, True, 10_000)

    def test_advance_from_another_thread_wakes_the_loop(self, use_uvloop: bool) -> None:
        """A thread advancing the clock wakes a loop blocked on visible executor work."""
        clock = MockClock()
        release = threading.Event()

        def worker() -> None:
            clock.advance(30)
            release.set()

        async def main() -> int:
            loop = asyncio.get_running_loop()
            sleeper = asyncio.ensure_future(asyncio.sleep(30))
            await asyncio.sleep(0)
            # The executor job blocks autojump; only the thread's advance can fire the timer.
            job = loop.run_in_executor(None, release.wait, 5)
            threading.Thread(target=worker).start()
            await sleeper
            await job
            return clock.now_monotonic_ms()

        assert run_virtual(use_uvloop, main, clock) == 30_000


class TestConcurrency:
    def test_interleaved_tasks_cancellation_and_errors(self, use_uvloop: bool) -> None:
        """Many tasks mixing sleeps, timeouts, cancellation and errors all end at exact times."""
        outcomes: dict[int, tuple[str, int]] = {}

        async def job(i: int) -> None:
            try:
                if i % 4 == 0:
                    async with asyncio.timeout(i % 7 + 1):
                        await asyncio.sleep(i % 5 + 5)
                elif i % 4 == 1:
                    await asyncio.sleep(i % 3 + 1)
                    raise ValueError(i)
                else:
                    await asyncio.sleep(i % 11 + 1)
                outcomes[i] = ("ok", now_ms())
            except TimeoutError:
                outcomes[i] = ("timeout", now_ms())
            except ValueError:
                outcomes[i] = ("error", now_ms())
            except asyncio.CancelledError:
                outcomes[i] = ("cancelled", now_ms())
                raise

        async def main() -> None:
            tasks = [asyncio.ensure_future(job(i)) for i in range(400)]
            await asyncio.sleep(2.5)
            for i in range(3, 400, 8):
                tasks[i].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        run_virtual(use_uvloop, main)
        for i, (kind, at) in outcomes.items():
            if i % 4 == 0:
                limit, work = (i % 7 + 1) * 1000, (i % 5 + 5) * 1000
                # At equal deadlines the timeout was scheduled first, so it wins (FIFO).
                assert (kind, at) == (("ok", work) if work < limit else ("timeout", limit)), i
            elif i % 4 == 1:
                assert (kind, at) == ("error", (i % 3 + 1) * 1000), i
            elif i % 8 == 3:
                wake = (i % 11 + 1) * 1000
                assert (kind, at) == (("ok", wake) if wake <= 2_500 else ("cancelled", 2_500)), i
            else:
                assert (kind, at) == ("ok", (i % 11 + 1) * 1000), i
        assert len(outcomes) == 400

    def test_mass_cancellation_compacts_the_heap(self, use_uvloop: bool) -> None:
        """Cancelling thousands of timers keeps the heap small and the survivors exact."""

        async def main() -> tuple[int, list[int]]:
            loop = asyncio.get_running_loop()
            ran: list[int] = []
            handles = [loop.call_later(i + 1, ran.append, i) for i in range(5_000)]
            for handle in handles[:-3]:
                handle.cancel()
            heap_size = len(loop._v_timers)  # type: ignore[attr-defined]  # the virtual loop's timer queue
            await asyncio.sleep(6_000)
            return heap_size, ran

        heap_size, ran = run_virtual(use_uvloop, main)
        assert heap_size < 200
        assert ran == [4_997, 4_998, 4_999]

    def test_callback_exception_goes_to_handler_and_loop_continues(
        self, use_uvloop: bool
    ) -> None:
        """A failing timer callback is reported to the exception handler; later timers still run."""

        async def main() -> tuple[list[str], list[int]]:
            loop = asyncio.get_running_loop()
            reported: list[str] = []
            loop.set_exception_handler(lambda _l, ctx: reported.append(str(ctx["exception"])))
            ran: list[int] = []

            def boom() -> None:
                raise RuntimeError("boom")

            loop.call_later(1, boom)
            loop.call_later(1, ran.append, 1)
            await asyncio.sleep(2)
            return reported, ran

        assert run_virtual(use_uvloop, main) == (["boom"], [1])


class _FakeHandle:
    """Just enough of a TimerHandle for the queue: a name and a cancelled flag."""

    def __init__(self, name: int) -> None:
        self.name = name
        self._cancelled = False
        self._scheduled = True


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.integers(min_value=0, max_value=20)),
            st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=400)),
            st.tuples(st.just("pop"), st.integers(min_value=0, max_value=20)),
        ),
        max_size=400,
    )
)
def test_timer_queue_matches_a_sorted_reference(ops: list[tuple[str, int]]) -> None:
    """TimerQueue pops live handles in (deadline, push order), like sorting a list would."""
    from harn_async_trace._vtime.timers import TimerQueue

    queue = TimerQueue()
    reference: list[tuple[int, int, _FakeHandle]] = []
    made: list[_FakeHandle] = []
    for op, value in ops:
        if op == "push":
            handle = _FakeHandle(len(made))
            made.append(handle)
            queue.push(value, handle)
            reference.append((value, handle.name, handle))
        elif op == "cancel" and made:
            handle = made[value % len(made)]
            if not handle._cancelled and handle._scheduled:
                handle._cancelled = True
                queue.note_cancelled()
        else:
            popped = [h.name for h in queue.pop_until(value) if not h._cancelled]
            due_now = sorted(e for e in reference if e[0] <= value)
            reference = [e for e in reference if e[0] > value]
            for _, _, h in due_now:
                h._scheduled = False
            assert popped == [name for _, name, h in due_now if not h._cancelled]
        live = [e for e in reference if not e[2]._cancelled]
        assert queue.peek_due() == (min(live)[0] if live else None)


def _leftover_order(runner: Callable[[Any], None]) -> list[int]:
    order: list[int] = []
    keep: list[asyncio.Future[None]] = []

    async def forgotten(i: int) -> None:
        try:
            await asyncio.sleep(100)
        finally:
            order.append(i)

    async def main() -> None:
        keep.extend(asyncio.ensure_future(forgotten(i)) for i in range(50))
        await asyncio.sleep(1)

    runner(main())
    return order


def test_run_cancels_leftover_tasks_in_creation_order(use_uvloop: bool) -> None:
    """run() cancels tasks main left running in the order they were created, every time."""
    for _ in range(3):
        order = _leftover_order(lambda coro: run(coro, clock=MockClock(), use_uvloop=use_uvloop))
        assert order == list(range(50))


def test_task_sets_iterate_the_same_way_on_every_run(use_uvloop: bool) -> None:
    """TaskGroup aborts and Runner shutdown cancel tasks in one reproducible order."""

    def once() -> list[str]:
        order: list[str] = []

        async def child(i: int) -> None:
            try:
                await asyncio.sleep(10)
            finally:
                order.append(f"group{i}")

        async def failing() -> None:
            await asyncio.sleep(1)
            raise ValueError("stop")

        async def forgotten(i: int) -> None:
            try:
                await asyncio.sleep(100)
            finally:
                order.append(f"left{i}")

        async def main() -> None:
            keep = [asyncio.ensure_future(forgotten(i)) for i in range(40)]
            try:
                async with asyncio.TaskGroup() as group:
                    for i in range(40):
                        group.create_task(child(i))
                    group.create_task(failing())
            except* ValueError:
                order.append("caught")
            assert len(keep) == 40

        clock = MockClock()
        with asyncio.Runner(loop_factory=virtual_loop_factory(clock, use_uvloop=use_uvloop)) as r:
            r.run(main())
        return order

    first = once()
    assert len(first) == 81
    assert all(once() == first for _ in range(4))
