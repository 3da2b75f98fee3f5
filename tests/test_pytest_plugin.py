"""The pytest plugin, exercised through pytester: fixtures, marker, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    """Inner runs get the same pytest-asyncio settings as this project."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


SNAPSHOT_TEST = """
from harn_async_trace import SpanKind, span

def test_flow(trace_collector, mock_clock, trace_snapshot):
    with span(SpanKind.PIPELINE, "main", user="ann"):
        mock_clock.advance(0.25)
        with span(SpanKind.TOOL_CALL, "NAME"):
            mock_clock.advance(0.5)
    trace_snapshot.assert_match()
"""


def _write(pytester: pytest.Pytester, tool_name: str) -> None:
    pytester.makepyfile(test_snap=SNAPSHOT_TEST.replace("NAME", tool_name))


class TestSnapshots:
    def test_missing_golden_fails_with_hint(self, pytester: pytest.Pytester) -> None:
        """Without a golden file the test fails and says how to create one."""
        _write(pytester, "grep")
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*no trace snapshot at*--update-trace-snapshots*"])

    def test_update_then_pass(self, pytester: pytest.Pytester) -> None:
        """--update-trace-snapshots writes the golden; the next run passes against it."""
        _write(pytester, "grep")
        pytester.runpytest("--update-trace-snapshots").assert_outcomes(passed=1)
        golden = Path(pytester.path, "__snapshots__", "test_snap", "test_flow.trace")
        assert golden.read_text() == (
            "#1 pipeline main @0ms +750ms\n"
            '    meta: user="ann"\n'
            "  #2 tool_call grep @250ms +500ms\n"
        )
        pytester.runpytest().assert_outcomes(passed=1)

    def test_mismatch_shows_unified_diff(self, pytester: pytest.Pytester) -> None:
        """A changed trace fails with a readable unified diff of the two trees."""
        _write(pytester, "grep")
        pytester.runpytest("--update-trace-snapshots").assert_outcomes(passed=1)
        _write(pytester, "find")
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*trace differs from snapshot*test_flow.trace",
                "*--- test_flow.trace (golden)",
                "*+++ test_flow.trace (this run)",
                "*-  #2 tool_call grep @250ms +500ms",
                "*+  #2 tool_call find @250ms +500ms",
            ]
        )

    def test_named_snapshots_and_replay(self, pytester: pytest.Pytester) -> None:
        """The same program replayed in two tests produces identical snapshot files."""
        pytester.makepyfile(
            test_replay="""
            import pytest
            from harn_async_trace import SpanKind, span, span_start, span_end

            def program(clock):
                with span(SpanKind.PIPELINE, "p"):
                    for i in range(3):
                        s = span_start(SpanKind.FN_CALL, f"f{i}")
                        clock.advance(i)
                        span_end(s)

            @pytest.mark.parametrize("run", [1, 2])
            def test_replay(run, trace_collector, mock_clock, trace_snapshot):
                program(mock_clock)
                trace_snapshot.assert_match(name=f"run{run}")
            """
        )
        pytester.runpytest("--update-trace-snapshots").assert_outcomes(passed=2)
        folder = Path(pytester.path, "__snapshots__", "test_replay")
        first = (folder / "test_replay[1]-run1.trace").read_text()
        second = (folder / "test_replay[2]-run2.trace").read_text()
        assert first == second
        assert "#4 fn_call f2 @1000ms +2000ms" in first


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

    def test_trace_id_replays_under_mock(self, pytester: pytest.Pytester) -> None:
        """Collectors made under the test's mock clock get the same trace id every time."""
        pytester.makepyfile(
            """
            import pytest
            seen = []

            @pytest.mark.parametrize("n", [1, 2])
            def test_id(n, mock_clock, trace_collector):
                seen.append(trace_collector.trace_id)
                assert len(set(seen)) == 1
            """
        )
        pytester.runpytest().assert_outcomes(passed=2)


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


def test_marker_rejects_bad_arguments(pytester: pytest.Pytester) -> None:
    """A malformed marker is a usage error naming the test and the argument."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mock_time(start="soon")
        async def test_bad():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*mark.mock_time takes only keyword arguments*start*"])


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
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend(virtual_anyio_backend):
            return virtual_anyio_backend
        """
    )
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
