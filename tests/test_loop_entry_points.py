"""loop.py: the ways in (run, factories, mock_time on a running loop) and loop details."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anyio
import pytest
import uvloop
from loop_support import now_ms, run_virtual

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
