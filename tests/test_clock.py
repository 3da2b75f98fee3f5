"""clock.py: MockClock, overrides, mock_time, advance_time and the wall-clock patch."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from harn_async_trace import (
    MockClock,
    MockClockError,
    SpanCollector,
    SpanKind,
    SystemClock,
    active_mock_clock,
    advance_time,
    install_override,
    mock_time,
    span,
    span_to_dict,
    use_collector,
)
from harn_async_trace.clock import current_clock


class TestMockClock:
    def test_starts_at_zero_and_wall_is_start_plus_monotonic(self) -> None:
        """Monotonic starts at 0; wall = start_wall_ms + monotonic."""
        clock = MockClock(start_wall_ms=5_000)
        assert (clock.now_monotonic_ms(), clock.now_wall_ms()) == (0, 5_000)
        clock.advance(1.25)
        assert (clock.now_monotonic_ms(), clock.now_wall_ms()) == (1_250, 6_250)
        assert clock.wall_ns() == 5_000 * 1_000_000 + clock.monotonic_ns()

    def test_at_wall_ms_is_the_constructor(self) -> None:
        """MockClock.at_wall_ms(ms) starts the wall clock at ms."""
        assert MockClock.at_wall_ms(42).now_wall_ms() == 42

    def test_advance_takes_timedelta_exactly(self) -> None:
        """A timedelta advances by its exact microseconds (no float rounding)."""
        clock = MockClock()
        clock.advance(timedelta(days=1, microseconds=3))
        assert clock.monotonic_ns() == 86_400 * 1_000_000_000 + 3_000

    @pytest.mark.parametrize("delta", [-1, -0.001, timedelta(seconds=-1)])
    def test_negative_advance_raises(self, delta: float | timedelta) -> None:
        """Time never goes backwards: a negative delta raises ValueError."""
        clock = MockClock()
        with pytest.raises(ValueError, match="backwards"):
            clock.advance(delta)
        assert clock.monotonic_ns() == 0

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", True])
    def test_bad_delta_is_rejected(self, bad: object) -> None:
        """Non-finite or non-numeric deltas are refused."""
        with pytest.raises((TypeError, ValueError)):
            MockClock().advance(bad)  # type: ignore[arg-type]  # runtime guard

    def test_concurrent_advances_are_not_lost(self) -> None:
        """Many threads advancing at once add up exactly (thread-safe)."""
        clock = MockClock()

        def work() -> None:
            for _ in range(5_000):
                clock.advance_ns(1)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert clock.monotonic_ns() == 40_000

    def test_set_monotonic_never_goes_back(self) -> None:
        """set_monotonic_ns jumps forward and refuses to go back."""
        clock = MockClock()
        clock.set_monotonic_ns(10)
        with pytest.raises(ValueError, match="backwards"):
            clock.set_monotonic_ns(9)
        assert clock.monotonic_ns() == 10

    def test_listeners_hear_every_move_but_their_own(self) -> None:
        """Listeners are told about advances; the mover of a jump is skipped."""
        clock = MockClock()
        heard: list[str] = []

        def first() -> None:
            heard.append("first")

        def second() -> None:
            heard.append("second")

        clock._add_listener(first)
        clock._add_listener(second)
        clock.advance(1)
        assert clock._move_to_ns(5_000_000_000, first) == 5_000_000_000
        assert clock._move_to_ns(1, first) == 5_000_000_000  # never backwards, no event
        clock._remove_listener(first)
        clock.advance(0)  # no movement, no event
        clock.advance(1)
        assert heard == ["first", "second", "second", "second"]


class TestOverrides:
    def test_system_clock_by_default(self) -> None:
        """Without overrides the active clock is the system clock."""
        assert isinstance(current_clock(), SystemClock)
        assert active_mock_clock() is None

    def test_overrides_nest_and_restore(self) -> None:
        """The innermost override wins and each guard restores its own."""
        outer, inner = MockClock(), MockClock()
        with install_override(outer):
            with install_override(inner):
                assert active_mock_clock() is inner
            assert active_mock_clock() is outer
        assert active_mock_clock() is None

    def test_out_of_order_restore_removes_the_right_clock(self) -> None:
        """Restoring an outer guard first leaves the inner clock active."""
        outer, inner = MockClock(), MockClock()
        g1 = install_override(outer)
        g2 = install_override(inner)
        g1.restore()
        assert active_mock_clock() is inner
        g2.restore()
        g2.restore()  # idempotent
        assert active_mock_clock() is None

    def test_install_override_rejects_non_clocks(self) -> None:
        """Anything without wall_ns/monotonic_ns is a TypeError."""
        with pytest.raises(TypeError, match="wall_ns"):
            install_override(object())  # type: ignore[arg-type]  # runtime guard


class TestMockTime:
    def test_sync_context_manager_gives_an_active_fresh_clock(self) -> None:
        """`with mock_time() as clock` makes a new clock active, then restores."""
        with mock_time(start_wall_ms=7) as clock:
            assert active_mock_clock() is clock
            assert clock.now_wall_ms() == 7
        assert active_mock_clock() is None

    def test_async_context_manager(self) -> None:
        """`async with mock_time()` works inside a coroutine."""

        async def main() -> int:
            async with mock_time(start_wall_ms=0) as clock:
                await asyncio.sleep(10)
                return clock.now_monotonic_ms()

        assert asyncio.run(main()) == 10_000
        assert active_mock_clock() is None

    def test_decorator_gives_each_call_a_fresh_clock(self) -> None:
        """A decorated function runs under a new clock on every call."""
        seen: list[MockClock | None] = []

        @mock_time(start_wall_ms=0)
        def work(step: float) -> int:
            seen.append(active_mock_clock())
            advance_time(step)
            clock = active_mock_clock()
            assert clock is not None
            return clock.now_monotonic_ms()

        assert work(1) == 1_000
        assert work(2) == 2_000
        assert seen[0] is not seen[1]
        assert work.__name__ == "work"

    def test_async_decorator_keeps_coroutine_function(self) -> None:
        """Decorating an async function keeps it a coroutine function with a fresh clock."""
        import inspect

        @mock_time(start_wall_ms=0)
        async def work() -> int:
            await asyncio.sleep(5)
            clock = active_mock_clock()
            assert clock is not None
            return clock.now_monotonic_ms()

        assert inspect.iscoroutinefunction(work)
        assert asyncio.run(work()) == 5_000

    def test_same_object_cannot_be_entered_twice(self) -> None:
        """Re-entering an active mock_time object is an error (nest a new one)."""
        block = mock_time()
        with block, pytest.raises(MockClockError, match="already active"), block:
            pass

    def test_sync_nesting_innermost_wins(self) -> None:
        """Outside any loop, mock_time blocks nest like overrides."""
        with mock_time() as outer:
            with mock_time() as inner:
                assert active_mock_clock() is inner
            assert active_mock_clock() is outer

    def test_bad_arguments_fail_at_construction(self) -> None:
        """Invalid start times or thresholds fail when mock_time() is called."""
        with pytest.raises(ValueError, match="start_wall_ms"):
            mock_time(start_wall_ms=-1)
        with pytest.raises(ValueError, match="autojump_threshold"):
            mock_time(autojump_threshold=-1)

    def test_exit_restores_even_on_error(self) -> None:
        """An exception in the block still uninstalls the clock and the loop policy."""
        policy = asyncio.get_event_loop_policy()
        with pytest.raises(KeyError), mock_time():
            raise KeyError("boom")
        assert active_mock_clock() is None
        assert asyncio.get_event_loop_policy() is policy


class TestAdvanceTime:
    def test_advances_the_active_mock(self) -> None:
        """advance_time moves the active mock by seconds or a timedelta."""
        with mock_time(start_wall_ms=0) as clock:
            advance_time(1.5)
            advance_time(timedelta(milliseconds=500))
            assert clock.now_monotonic_ms() == 2_000

    def test_without_mock_says_what_to_do(self) -> None:
        """With real time, advance_time raises MockClockError pointing at mock_time."""
        with pytest.raises(MockClockError, match="mock_time"):
            advance_time(1)

    def test_negative_is_a_value_error(self) -> None:
        """advance_time refuses to go backwards."""
        with mock_time(), pytest.raises(ValueError, match="backwards"):
            advance_time(-1)


class TestWallPatch:
    def test_time_and_datetime_follow_the_mock(self) -> None:
        """With patch_wall=True, time.time() and datetime.now() read the mock's wall clock."""
        start_ms = 1_600_000_000_123
        with mock_time(start_wall_ms=start_ms, patch_wall=True):
            assert time.time_ns() // 1_000_000 == start_ms
            advance_time(90)
            assert time.time_ns() // 1_000_000 == start_ms + 90_000
            now = datetime.now(tz=UTC)
            assert round(now.timestamp() * 1000) == start_ms + 90_000
        assert abs(time.time() - SystemClock().wall_ns() / 1e9) < 60

    def test_wall_follows_loop_autojumps(self) -> None:
        """A virtual loop's jumps move the patched wall clock too."""

        async def main() -> int:
            await asyncio.sleep(3600)
            return time.time_ns() // 1_000_000

        with mock_time(start_wall_ms=0, patch_wall=True):
            assert asyncio.run(main()) == 3_600_000

    def test_wall_is_real_without_patch(self) -> None:
        """Without patch_wall, time.time() stays real inside mock_time."""
        with mock_time(start_wall_ms=0):
            assert time.time() > 1_500_000_000


class TestDeterministicSpans:
    @staticmethod
    def _program() -> list[dict[str, object]]:
        async def child(i: int) -> None:
            with span(SpanKind.FN_CALL, f"child{i}") as handle:
                await asyncio.sleep(0.25 * i)
                handle.record_event("tick", i=i)
                await asyncio.sleep(1)

        async def main() -> None:
            async with span(SpanKind.PIPELINE, "main"):
                await asyncio.gather(*(child(i) for i in range(4)))

        with mock_time(start_wall_ms=1_000):
            collector = SpanCollector()
            with use_collector(collector):
                asyncio.run(main())
        return [span_to_dict(s) for s in collector.spans()]

    def test_two_runs_give_identical_spans_and_trace_ids(self) -> None:
        """Spans under mock_time depend only on the program: trace id, times, offsets."""
        first, second = self._program(), self._program()
        assert first == second
        main = first[-1]
        assert main["duration_ms"] == 1_750
        assert main["start_unix_ms"] == 1_000
        assert str(main["trace_id"]).startswith("trace_")
        events = next(s["events"] for s in first if s["name"] == "child3")
        assert events == [{"name": "tick", "time_unix_ms": 1_750, "offset_ms": 750,
                           "attributes": {"i": 3}}]  # fmt: skip


class TestClockPerThread:
    """Issue 14 part 1: a span reads its own thread's virtual loop clock."""

    @pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
    def test_two_threads_two_virtual_loops_record_their_own_times(
        self, use_uvloop: bool
    ) -> None:
        """Overlapping spans in two threads, each on its own loop's clock, are exact."""
        from harn_async_trace.loop import run

        collector = SpanCollector()
        both_open = threading.Barrier(2, timeout=10)
        results: dict[str, list[dict[str, object]]] = {}
        errors: list[BaseException] = []

        async def work(label: str, seconds: float) -> None:
            with use_collector(collector):
                with span(SpanKind.STEP, f"outer-{label}"):
                    # Both outer spans are open (in real time) at once here.
                    await asyncio.get_running_loop().run_in_executor(None, both_open.wait)
                    with span(SpanKind.STEP, f"inner-{label}"):
                        await asyncio.sleep(seconds)
                    await asyncio.sleep(seconds)

        def thread_main(label: str, start_ms: int, seconds: float) -> None:
            try:
                run(work(label, seconds), clock=MockClock(start_ms), use_uvloop=use_uvloop)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=thread_main, args=("a", 1_000_000, 5.0)),
            threading.Thread(target=thread_main, args=("b", 9_000_000, 0.25)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors
        for record in collector.spans():
            results.setdefault(record.name, []).append(span_to_dict(record))
        got = {name: (r[0]["start_unix_ms"], r[0]["duration_ms"]) for name, r in results.items()}
        assert got == {
            "outer-a": (1_000_000, 10_000),
            "inner-a": (1_000_000, 5_000),
            "outer-b": (9_000_000, 500),
            "inner-b": (9_000_000, 250),
        }

    def test_thread_without_a_loop_reads_the_override(self) -> None:
        """A plain thread reads the process-wide override while another thread runs a loop."""
        from harn_async_trace.loop import run

        override = MockClock(start_wall_ms=123)
        loop_clock = MockClock(start_wall_ms=999)
        seen: dict[str, object] = {}
        loop_running = threading.Event()
        checked = threading.Event()

        async def hold_loop() -> None:
            seen["loop"] = current_clock()
            loop_running.set()
            await asyncio.get_running_loop().run_in_executor(None, checked.wait, 10)

        with install_override(override):
            runner = threading.Thread(target=run, args=(hold_loop(),), kwargs={"clock": loop_clock})
            runner.start()
            assert loop_running.wait(10)
            seen["plain"] = current_clock()
            checked.set()
            runner.join(10)
            seen["after"] = current_clock()
        assert seen == {"loop": loop_clock, "plain": override, "after": override}
        assert current_clock() is not override

    def test_executor_job_reads_its_loops_clock(self) -> None:
        """Work a virtual loop hands to an executor thread reads that loop's clock."""
        from harn_async_trace.loop import run

        clock = MockClock()

        async def main() -> object:
            await asyncio.sleep(2)
            return await asyncio.to_thread(lambda: active_mock_clock())

        assert run(main(), clock=clock) is clock
        assert active_mock_clock() is None

    def test_loop_clock_wins_over_an_override_in_its_thread(self) -> None:
        """Inside a virtual loop's thread its clock is read, even under another override."""
        from harn_async_trace.loop import run

        clock, other = MockClock(), MockClock()

        async def main() -> object:
            with install_override(other):
                return current_clock()

        assert run(main(), clock=clock) is clock


class TestRejectedUpFront:
    """Issue 13: bad arguments are refused when given, naming the argument."""

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, "1", True])
    def test_mock_time_autojump_threshold(self, bad: object) -> None:
        with pytest.raises((TypeError, ValueError), match="autojump_threshold"):
            mock_time(autojump_threshold=bad)  # type: ignore[arg-type]  # runtime guard

    @pytest.mark.parametrize("bad", [float("nan"), -0.5])
    def test_loop_entry_points_autojump_threshold(self, bad: float) -> None:
        from harn_async_trace.loop import run, virtual_loop_factory

        with pytest.raises(ValueError, match="autojump_threshold"):
            virtual_loop_factory(MockClock(), autojump_threshold=bad)
        coro = asyncio.sleep(0)
        with pytest.raises(ValueError, match="autojump_threshold"):
            run(coro, clock=MockClock(), autojump_threshold=bad)
        coro.close()

    @pytest.mark.parametrize("bad", [1.5, "3", None, True])
    def test_advance_ns_needs_an_int(self, bad: object) -> None:
        clock = MockClock()
        with pytest.raises(TypeError, match="delta_ns"):
            clock.advance_ns(bad)  # type: ignore[arg-type]  # runtime guard
        with pytest.raises(TypeError, match="value_ns"):
            clock.set_monotonic_ns(bad)  # type: ignore[arg-type]  # runtime guard
        assert clock.monotonic_ns() == 0
