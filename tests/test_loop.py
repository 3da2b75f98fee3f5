"""loop.py: the virtual-time event loop on stock asyncio and uvloop."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from harn_async_trace import (
    MockClock,
    MockClockError,
    SpanCollector,
    SpanKind,
    active_mock_clock,
    advance_time,
    mock_time,
    span,
    span_to_dict,
    use_collector,
    virtual_loop_factory,
)
from harn_async_trace.loop import anyio_backend_options, loop_clock, run

T = TypeVar("T")


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def use_uvloop(request: pytest.FixtureRequest) -> bool:
    """Run the test on the stock asyncio loop and on uvloop."""
    return bool(request.param)


def run_virtual(
    use_uvloop: bool, main: Callable[[], Awaitable[T]], clock: MockClock | None = None
) -> T:
    """Run ``main()`` on a fresh virtual loop of the requested kind."""

    async def wrapper() -> T:
        return await main()

    return run(wrapper(), clock=clock or MockClock(start_wall_ms=0), use_uvloop=use_uvloop)


def now_ms() -> int:
    clock = active_mock_clock()
    assert clock is not None
    return clock.now_monotonic_ms()


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


class TestInvisibleWork:
    @staticmethod
    def _thread_result(delay_s: float) -> Callable[[], Coroutine[Any, Any, int]]:
        async def main() -> int:
            loop = asyncio.get_running_loop()
            result: asyncio.Future[int] = loop.create_future()

            def work() -> None:
                time.sleep(delay_s)  # real work the loop cannot see
                def post() -> None:
                    if not result.done():
                        result.set_result(1)

                loop.call_soon_threadsafe(post)

            thread = threading.Thread(target=work)
            thread.start()
            try:
                async with asyncio.timeout(10):
                    await result
            finally:
                # Let the thread post before the loop closes (joining blocks the loop,
                # which is fine: it only ever waits delay_s).
                thread.join()
            return now_ms()

        return main

    def test_threshold_waits_for_thread_work(self, use_uvloop: bool) -> None:
        """With an autojump threshold, a plain thread finishing in time is not skipped past."""
        result = run(
            self._thread_result(0.02)(),
            clock=MockClock(),
            use_uvloop=use_uvloop,
            autojump_threshold=1.0,
        )
        assert result == 0

    def test_a_thread_started_by_the_program_holds_time_without_threshold(
        self, use_uvloop: bool
    ) -> None:
        """Issue 15: a plain thread that will call_soon_threadsafe is work the loop sees.

        While it really runs (here: sleeps 0.2 s of real time) virtual time
        holds still, so the 10 s timeout around it does not fire.
        """
        assert run_virtual(use_uvloop, self._thread_result(0.2)) == 0

    def test_executor_work_is_visible_without_threshold(self, use_uvloop: bool) -> None:
        """run_in_executor/to_thread work holds time still until it finishes."""

        async def main() -> int:
            async with asyncio.timeout(1):
                await asyncio.to_thread(time.sleep, 0.02)
            return now_ms()

        assert run_virtual(use_uvloop, main) == 0

    def test_threshold_still_jumps_when_truly_idle(self, use_uvloop: bool) -> None:
        """With a threshold, an idle loop jumps after about that much real time."""

        async def main() -> int:
            await asyncio.sleep(3600)
            return now_ms()

        real_start = time.perf_counter()
        result = run(main(), clock=MockClock(), use_uvloop=use_uvloop, autojump_threshold=0.05)
        assert result == 3_600_000
        assert 0.04 < time.perf_counter() - real_start < 2


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


class TestEntryPoints:
    def test_loop_time_is_the_mock_and_clock_active_only_while_running(
        self, use_uvloop: bool
    ) -> None:
        """Factory loops report the mock's time and make it active only while they run."""
        clock = MockClock()
        clock.advance(10)
        factory = virtual_loop_factory(clock, use_uvloop=use_uvloop)

        async def main() -> tuple[float, bool, bool]:
            loop = asyncio.get_running_loop()
            return loop.time(), active_mock_clock() is clock, loop_clock() is clock

        with asyncio.Runner(loop_factory=factory) as runner:
            assert runner.run(main()) == (10.0, True, True)
        assert active_mock_clock() is None

    def test_uvloop_run_accepts_the_factory(self) -> None:
        """uvloop.run(..., loop_factory=virtual_loop_factory(clock, use_uvloop=True)) is virtual."""
        clock = MockClock()

        async def main() -> bool:
            await asyncio.sleep(120)
            return isinstance(asyncio.get_running_loop(), uvloop.Loop)

        assert uvloop.run(main(), loop_factory=virtual_loop_factory(clock, use_uvloop=True))
        assert clock.now_monotonic_ms() == 120_000

    def test_anyio_asyncio_backend(self, use_uvloop: bool) -> None:
        """anyio on the asyncio backend with our loop_factory: sleeps and fail_after are virtual."""
        clock = MockClock()

        async def main() -> int:
            await anyio.sleep(90)
            with pytest.raises(TimeoutError):
                with anyio.fail_after(3):
                    await anyio.sleep(5)
            return clock.now_monotonic_ms()

        options = anyio_backend_options(clock, "asyncio", use_uvloop=use_uvloop)
        assert anyio.run(main, backend="asyncio", backend_options=options) == 93_000

    def test_anyio_task_group_with_staggered_sleeps(self, use_uvloop: bool) -> None:
        """anyio task groups on the virtual loop wake every child at its deadline."""
        clock = MockClock()
        woke: list[int] = []

        async def child(i: int) -> None:
            await anyio.sleep(i)
            woke.append(clock.now_monotonic_ms())

        async def main() -> None:
            async with anyio.create_task_group() as group:
                for i in range(1, 6):
                    group.start_soon(child, i)

        options = {"loop_factory": virtual_loop_factory(clock, use_uvloop=use_uvloop)}
        anyio.run(main, backend="asyncio", backend_options=options)
        assert woke == [1_000, 2_000, 3_000, 4_000, 5_000]

    def test_anyio_trio_backend_maps_to_trio_mock_clock(self) -> None:
        """On trio, time follows trio.testing.MockClock and spans/advance_time see it."""
        clock = MockClock(start_wall_ms=0)
        collector = SpanCollector()

        async def main() -> int:
            with use_collector(collector):
                async with span(SpanKind.STEP, "wait"):
                    await anyio.sleep(90)
                    advance_time(10)
            with pytest.raises(TimeoutError):
                with anyio.fail_after(3):
                    await anyio.sleep(5)
            return now_ms()

        options = anyio_backend_options(clock, "trio")
        assert anyio.run(main, backend="trio", backend_options=options) == 103_000
        assert clock.now_monotonic_ms() == 103_000
        assert collector.spans()[0].duration_ms == 100_000

    def test_run_rejects_bad_arguments(self) -> None:
        """A non-MockClock or a negative threshold is refused up front."""

        async def main() -> None:
            return None

        coro = main()
        with pytest.raises(TypeError, match="MockClock"):
            run(coro, clock=object())  # type: ignore[arg-type]  # runtime guard
        coro.close()
        with pytest.raises(ValueError, match="backend"):
            anyio_backend_options(MockClock(), "curio")


class TestMockTimeOnLoops:
    def test_asyncio_run_inside_mock_time_is_virtual(self) -> None:
        """`with mock_time(): asyncio.run(main())` runs main on virtual time."""

        async def main() -> tuple[float, int]:
            await asyncio.sleep(600)
            return asyncio.get_running_loop().time(), now_ms()

        with mock_time():
            assert asyncio.run(main()) == (600.0, 600_000)

    def test_uvloop_policy_inside_mock_time_gives_virtual_uvloop(self) -> None:
        """With uvloop's policy installed, loops made inside mock_time are virtual uvloop loops."""

        async def main() -> tuple[bool, int]:
            await asyncio.sleep(60)
            return isinstance(asyncio.get_running_loop(), uvloop.Loop), now_ms()

        previous = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        try:
            with mock_time():
                assert asyncio.run(main()) == (True, 60_000)
        finally:
            asyncio.set_event_loop_policy(previous)

    def test_our_real_time_loop_is_virtualised_in_place(self, use_uvloop: bool) -> None:
        """run() without a clock is real time until mock_time; then virtual; then real again."""

        async def main() -> tuple[int, float, bool, bool]:
            loop = asyncio.get_running_loop()
            pending = loop.call_later(3600, lambda: None)  # armed on real time
            with mock_time(start_wall_ms=0) as clock:
                real_start = time.perf_counter()
                await asyncio.sleep(100)
                inside = clock.now_monotonic_ms()
                elapsed = time.perf_counter() - real_start
                remaining = pending.when() - loop.time()
            after = loop_clock() is None and active_mock_clock() is None
            real_before = time.perf_counter()
            await asyncio.sleep(0.01)
            slept_for_real = time.perf_counter() - real_before >= 0.009
            pending.cancel()
            assert elapsed < 1
            return inside, round(remaining), after, slept_for_real

        assert run(main(), use_uvloop=use_uvloop) == (100_000, 3500, True, True)

    def test_running_stock_loop_is_virtualised_in_place_and_restored(self) -> None:
        """A plain asyncio loop is virtual inside mock_time and back to itself after."""

        async def main() -> tuple[int, type, type, float]:
            loop = asyncio.get_running_loop()
            original = type(loop)
            pending = loop.call_later(3600, lambda: None)
            async with mock_time() as clock:
                inside_class = type(loop)
                await asyncio.sleep(1800)
                inside = clock.now_monotonic_ms()
            remaining = pending.when() - loop.time()
            restored = type(loop)
            assert restored is original
            assert pending in loop._scheduled  # type: ignore[attr-defined]  # stock asyncio's timer heap
            pending.cancel()
            return inside, inside_class, restored, round(remaining)

        inside, inside_class, restored, remaining = asyncio.run(main())
        assert inside == 1_800_000
        assert inside_class is not restored
        assert remaining == 1800

    @pytest.mark.asyncio
    async def test_pytest_asyncio_test_can_use_mock_time(self) -> None:
        """Inside a pytest-asyncio test, `async with mock_time()` makes sleeps virtual."""
        real_start = time.perf_counter()
        async with mock_time() as clock:
            await asyncio.sleep(86_400)
        assert clock.now_monotonic_ms() == 86_400_000
        assert time.perf_counter() - real_start < 1

    def test_foreign_uvloop_loop_is_refused_with_entry_points(self) -> None:
        """mock_time on a running uvloop loop we did not create names our entry points."""

        async def main() -> None:
            with mock_time():
                pass

        with pytest.raises(MockClockError, match="virtual_loop_factory") as info:
            uvloop.run(main())
        assert "run(main(), clock=MockClock(), use_uvloop=True)" in str(info.value)
        assert active_mock_clock() is None

    def test_nesting_mock_time_in_a_virtual_loop_is_refused(self, use_uvloop: bool) -> None:
        """A second clock cannot take over a loop already on one; the error says what to use."""

        async def main() -> None:
            with mock_time():
                pass

        with pytest.raises(MockClockError, match="advance_time"):
            run_virtual(use_uvloop, main)

    def test_same_program_twice_gives_identical_traces(self, use_uvloop: bool) -> None:
        """Two runs of one program on fresh clocks give identical spans, trace ids included."""

        def once() -> list[dict[str, Any]]:
            clock = MockClock(start_wall_ms=5_000)

            async def worker(i: int) -> None:
                async with span(SpanKind.FN_CALL, f"w{i}") as handle:
                    await asyncio.sleep(i * 0.5)
                    handle.record_event("half")
                    try:
                        async with asyncio.timeout(1):
                            await asyncio.sleep(i)
                    except TimeoutError:
                        handle.set_metadata("timed_out", True)

            async def main() -> list[dict[str, Any]]:
                collector = SpanCollector()
                with use_collector(collector):
                    async with span(SpanKind.PIPELINE, "main"):
                        await asyncio.gather(*(worker(i) for i in range(5)))
                return [span_to_dict(s) for s in collector.spans()]

            return run(main(), clock=clock, use_uvloop=use_uvloop)

        first, second = once(), once()
        assert first == second
        assert first[-1]["name"] == "main"
        assert first[-1]["duration_ms"] == 3_000


class TestLoopDetails:
    def test_debug_mode_loop_is_virtual_too(self, use_uvloop: bool) -> None:
        """With loop debug on (slow-path handles), sleeps and timeouts stay exact."""

        async def main() -> int:
            asyncio.get_running_loop().set_debug(True)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2):
                    await asyncio.sleep(3)
            await asyncio.sleep(1)
            return now_ms()

        assert run_virtual(use_uvloop, main) == 3_000

    def test_run_inside_mock_time_adopts_the_active_clock(self, use_uvloop: bool) -> None:
        """run() without a clock inside mock_time runs on the active mock."""

        async def main() -> int:
            await asyncio.sleep(42)
            return now_ms()

        with mock_time(start_wall_ms=0) as clock:
            assert run(main(), use_uvloop=use_uvloop) == 42_000
            assert clock.now_monotonic_ms() == 42_000

    def test_closing_the_loop_lets_go_of_the_clock(self, use_uvloop: bool) -> None:
        """A closed loop no longer listens to its clock."""
        clock = MockClock()

        async def main() -> int:
            return len(clock._listeners)

        assert run(main(), clock=clock, use_uvloop=use_uvloop) == 1
        assert clock._listeners == ()

    def test_threshold_from_mock_time_applies_in_place_and_is_undone(self) -> None:
        """mock_time(autojump_threshold=...) in place waits for a thread, then is undone."""

        async def main() -> tuple[int, bool]:
            loop = asyncio.get_running_loop()
            with mock_time(autojump_threshold=1.0) as clock:
                result: asyncio.Future[int] = loop.create_future()

                def work() -> None:
                    time.sleep(0.02)  # real work the loop cannot see
                    loop.call_soon_threadsafe(result.set_result, 1)

                thread = threading.Thread(target=work)
                thread.start()
                async with asyncio.timeout(10):
                    await result
                thread.join()
                inside = clock.now_monotonic_ms()
            return inside, "call_soon" in vars(loop)

        assert asyncio.run(main()) == (0, False)

    def test_policy_refuses_loop_classes_it_cannot_virtualise(self) -> None:
        """A policy making a non-asyncio, non-uvloop loop gets a clear MockClockError."""

        class OddLoop(asyncio.AbstractEventLoop):
            closed = False

            def close(self) -> None:
                self.closed = True

        made: list[OddLoop] = []

        class OddPolicy(asyncio.DefaultEventLoopPolicy):
            def new_event_loop(self) -> asyncio.AbstractEventLoop:
                made.append(OddLoop())  # type: ignore[abstract]  # only close() is used
                return made[-1]

        previous = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(OddPolicy())
        try:
            with mock_time(), pytest.raises(MockClockError, match="OddLoop"):
                asyncio.new_event_loop()
        finally:
            asyncio.set_event_loop_policy(previous)
        assert made[0].closed

    def test_time_stands_still_during_executor_work_then_jumps(self, use_uvloop: bool) -> None:
        """A pending executor job holds time at its value; once it is done, timers jump."""

        async def main() -> tuple[int, int]:
            loop = asyncio.get_running_loop()
            sleeper = asyncio.ensure_future(asyncio.sleep(5))
            await loop.run_in_executor(None, time.sleep, 0.02)
            at_job = now_ms()
            await sleeper
            return at_job, now_ms()

        assert run_virtual(use_uvloop, main) == (0, 5_000)


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


def test_local_socket_round_trips_are_not_skipped(use_uvloop: bool) -> None:
    """Traffic over a local TCP socket is seen by the loop: no timeout fires spuriously."""

    async def main() -> tuple[int, float]:
        handler_done = asyncio.Event()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()
            handler_done.set()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        echoed = 0
        for i in range(100):
            writer.write(f"{i}\n".encode())
            await writer.drain()
            if await asyncio.wait_for(reader.readline(), 5) == f"{i}\n".encode():
                echoed += 1
        writer.close()
        await writer.wait_closed()
        await handler_done.wait()
        server.close()
        await server.wait_closed()
        return echoed, asyncio.get_running_loop().time()

    assert run_virtual(use_uvloop, main) == (100, 0.0)


class TestRealWorkIsSeen:
    """Issue 15: work the loop started holds virtual time still; what waits on the loop does not."""

    def test_anyio_worker_threads_hold_time(self, use_uvloop: bool) -> None:
        """anyio.to_thread has its own threads (not run_in_executor): timeouts around them hold."""

        async def main() -> tuple[int, int]:
            with anyio.fail_after(5):
                await anyio.to_thread.run_sync(time.sleep, 0.05)
            before = now_ms()

            def waits_on_the_loop() -> None:
                anyio.from_thread.run(anyio.sleep, 2)

            with anyio.fail_after(10):
                await anyio.to_thread.run_sync(waits_on_the_loop)
            return before, now_ms()

        clock = MockClock(start_wall_ms=0)
        options = anyio_backend_options(clock, use_uvloop=use_uvloop)

        async def in_anyio() -> tuple[int, int]:
            return await main()

        assert anyio.run(in_anyio, backend_options=options) == (0, 2_000)

    def test_executor_job_waiting_on_the_loop_times_out_like_a_real_loop(
        self, use_uvloop: bool
    ) -> None:
        """wait_for(job needing 4 loop seconds, timeout=1) times out at virtual 1 s; no deadlock."""

        async def main() -> tuple[str, int, int]:
            loop = asyncio.get_running_loop()

            def job() -> int:
                for _ in range(4):
                    asyncio.run_coroutine_threadsafe(asyncio.sleep(1), loop).result(30)
                return 4

            future = loop.run_in_executor(None, job)
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout=1)
                outcome = "done"
            except TimeoutError:
                outcome = "timeout"
            at_timeout = now_ms()
            assert await future == 4
            return outcome, at_timeout, now_ms()

        assert run_virtual(use_uvloop, main) == ("timeout", 1_000, 4_000)

    def test_connecting_to_localhost_holds_time(self, use_uvloop: bool) -> None:
        """DNS for "localhost" (libuv pool on uvloop) and the connect take no virtual time."""

        async def main() -> int:
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            ticks = asyncio.create_task(asyncio.sleep(3600))
            for _ in range(20):
                async with asyncio.timeout(0.5):
                    _, writer = await asyncio.open_connection("localhost", port)
                writer.close()
            ticks.cancel()
            server.close()
            await server.wait_closed()
            return now_ms()

        assert run_virtual(use_uvloop, main) == 0

    def test_debug_mode_logs_no_jump_and_reprs_name_the_caller(
        self, use_uvloop: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """In debug mode no 'Executing ... took 3600 s' is logged, and tasks are created here."""

        async def main() -> str:
            task = asyncio.get_running_loop().create_task(asyncio.sleep(1))
            await asyncio.sleep(3600)
            await task
            return repr(task)

        caplog.set_level("WARNING", logger="asyncio")
        factory = virtual_loop_factory(MockClock(), use_uvloop=use_uvloop)
        with asyncio.Runner(debug=True, loop_factory=factory) as runner:
            text = runner.run(main())
        # A loaded machine may really take 0.1 s somewhere; a jump would say 3600 s.
        took = [float(x) for x in re.findall(r"took ([0-9.]+) seconds", caplog.text)]
        assert all(seconds < 100 for seconds in took), caplog.text
        assert "_vtime" not in text
        assert __file__.rsplit("/", 1)[-1] in text

    def test_virtual_uvloop_looks_like_uvloop(self) -> None:
        """Code that tells uvloop apart by module (anyio does) sees uvloop."""
        loop = virtual_loop_factory(MockClock(), use_uvloop=True)()
        try:
            assert type(loop).__module__ == uvloop.Loop.__module__
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
