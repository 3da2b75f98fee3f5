"""The pytest plugin's fixtures and the mock_time marker, exercised through pytester.

Goldens are in test_pytest_plugin_goldens.py; what keeps a mock_time test off
real time is in test_pytest_plugin_realtime.py.
"""

from __future__ import annotations

import re

import pytest
from plugin_support import VIRTUAL_ANYIO_CONFTEST, write_ini

from harn_async_trace import MockClock
from harn_async_trace._trace_id import new_trace_id


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    write_ini(pytester)


class TestFixtures:
    def test_isolation_between_tests(self, pytester: pytest.Pytester) -> None:
        """Each test gets a fresh collector (ids from 1) and a fresh clock at 0."""
        pytester.makepyfile(
            """
            from harn_async_trace import SpanKind, span_start, span_end, active_mock_clock

            def test_one(trace_collector, mock_clock):
                assert active_mock_clock() is mock_clock
                mock_clock.advance(10)
                assert span_start(SpanKind.STEP, "a") == 1

            def test_two(trace_collector, mock_clock):
                assert mock_clock.now_monotonic_ms() == 0
                assert trace_collector.spans() == []
                assert span_start(SpanKind.STEP, "b") == 1

            def test_after(trace_collector):
                assert active_mock_clock() is None
            """
        )
        pytester.runpytest().assert_outcomes(passed=3)

    def test_trace_id_replays_whatever_the_fixture_order(
        self, pytester: pytest.Pytester
    ) -> None:
        """trace_collector's id is the same in every test and run, before or after busy fixtures."""
        pytester.makepyfile(
            """
            import pytest
            from harn_async_trace import SpanCollector, install_override

            @pytest.fixture
            def busy(mock_clock):
                # Moves the clock and draws a trace id from it before the test's collector.
                mock_clock.advance(5)
                with install_override(mock_clock):
                    SpanCollector()

            @pytest.mark.mock_time()
            async def test_collector_after(busy, trace_collector):
                print("ID", trace_collector.trace_id)

            @pytest.mark.mock_time()
            async def test_collector_before(trace_collector, busy):
                print("ID", trace_collector.trace_id)

            def test_sync_with_mock_clock(busy, trace_collector):
                print("ID", trace_collector.trace_id)
            """
        )
        ids = []
        for _ in range(2):
            result = pytester.runpytest("-s")
            result.assert_outcomes(passed=3)
            ids += re.findall(r"ID (trace_\S+)", result.stdout.str())
        assert ids == [new_trace_id(MockClock())] * 6


@pytest.mark.parametrize("use_uvloop", [False, True])
def test_mock_time_marker_alone_runs_on_virtual_loop(
    pytester: pytest.Pytester, use_uvloop: bool
) -> None:
    """@mark.mock_time alone runs an async test on virtual time, on asyncio and uvloop."""
    pytester.makepyfile(
        f"""
        import asyncio, time
        import pytest
        from harn_async_trace import SpanKind, span

        @pytest.mark.mock_time(start_wall_ms=1_000, uvloop={use_uvloop})
        async def test_hour(trace_collector, mock_clock):
            real_start = time.perf_counter()
            async with span(SpanKind.STEP, "wait"):
                await asyncio.sleep(3600)
            assert time.perf_counter() - real_start < 5
            (only,) = trace_collector.spans()
            assert only.duration_ms == 3_600_000
            assert only.start_unix_ms == 1_000
            assert mock_clock.now_monotonic_ms() == 3_600_000
            if {use_uvloop}:
                import uvloop
                assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_marker_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """With pytest-asyncio disabled, the plugin runs mock_time tests itself."""
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.mock_time()
        async def test_sleep(mock_clock):
            await asyncio.sleep(90)
            assert mock_clock.now_monotonic_ms() == 90_000
        """
    )
    pytester.runpytest("-p", "no:asyncio", "-p", "no:looptime_plugin").assert_outcomes(passed=1)


def test_anyio_backend_on_virtual_loop(pytester: pytest.Pytester) -> None:
    """virtual_anyio_backend puts anyio's asyncio backend on the test's mock clock."""
    pytester.makeconftest(VIRTUAL_ANYIO_CONFTEST)
    pytester.makepyfile(
        """
        import anyio
        import pytest

        @pytest.mark.anyio
        async def test_sleep(mock_clock):
            with anyio.move_on_after(5):
                await anyio.sleep(60)
            assert mock_clock.now_monotonic_ms() == 5_000
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_real_sleep_in_thread_warns(pytester: pytest.Pytester) -> None:
    """A real time.sleep in a worker thread of a mock_time test raises a DeterminismWarning."""
    pytester.makepyfile(
        """
        import asyncio, time
        import pytest

        @pytest.mark.mock_time()
        async def test_thread():
            await asyncio.to_thread(time.sleep, 0.01)
        """
    )
    result = pytester.runpytest("-W", "always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DeterminismWarning: time.sleep(0.01) in a worker thread*"])


def test_wall_clock_read_warns_without_patch(pytester: pytest.Pytester) -> None:
    """Test code reading time.time() under mock_time (no patch_wall) gets a DeterminismWarning."""
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.mock_time()
        async def test_reads_wall():
            assert time.time() > 1_600_000_000
        """
    )
    result = pytester.runpytest("-W", "always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DeterminismWarning: time.time() read the real wall clock*"])


def test_patch_wall_makes_time_follow_the_mock(pytester: pytest.Pytester) -> None:
    """With patch_wall=True, time.time() and datetime.now() follow the mock, with no warning."""
    pytester.makepyfile(
        """
        import asyncio, datetime, time
        import pytest

        @pytest.mark.mock_time(start_wall_ms=1_000_000, patch_wall=True)
        async def test_follows():
            assert time.time() == 1_000.0
            await asyncio.sleep(60)
            assert time.time() == 1_060.0
            now = datetime.datetime.now(datetime.timezone.utc)
            assert now.timestamp() == 1_060.0
        """
    )
    result = pytester.runpytest("-W", "error::harn_async_trace.pytest_plugin.DeterminismWarning")
    result.assert_outcomes(passed=1)
