"""A mock_time test runs on the virtual loop or fails naming why; bad markers are usage errors.

Each inner test body raises at once, so a test that was let through onto
some other loop would show "body ran" instead of the expected message.
"""

from __future__ import annotations

import pytest
from plugin_support import (
    PYTEST_ASYNCIO,
    VIRTUAL_ANYIO_CONFTEST,
    needs_old_pytest_asyncio,
    needs_supported_pytest_asyncio,
    write_ini,
)


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    write_ini(pytester)


def _assert_setup_error(result: pytest.RunResult, cause: str) -> None:
    """One error at setup, whose message is the test's node id and then ``cause``."""
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_*", f"test_*.py::test_*: {cause}", "ERROR test_*Failed: *"]
    )
    result.stdout.no_fnmatch_line("*body ran*")


def _assert_stopped_as_it_starts(result: pytest.RunResult, message: str) -> None:
    """One failure, with ``message``, before the test's body ran."""
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*body ran*")


class TestCausesKnownBeforeSetup:
    def test_sync_test(self, pytester: pytest.Pytester) -> None:
        """A plain def test under the marker is an error that points at mock_clock."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.mock_time()
            def test_sync():
                raise AssertionError("body ran")
            """
        )
        _assert_setup_error(
            pytester.runpytest(),
            "*runs `async def` tests*this test is a plain function*mock_clock*",
        )

    @needs_supported_pytest_asyncio
    @pytest.mark.parametrize(
        ("ini", "marker", "cause"),
        [
            ("", '@pytest.mark.asyncio(loop_scope="module")', "'module' (from mark.asyncio*"),
            ("asyncio_default_test_loop_scope = session\n", "", "'session'*asyncio_default_test*"),
        ],
        ids=["marker", "ini"],
    )
    def test_shared_loop_scope(
        self, pytester: pytest.Pytester, ini: str, marker: str, cause: str
    ) -> None:
        """A loop shared wider than the test (marker or ini option) is an error naming the scope."""
        write_ini(pytester, ini)
        pytester.makepyfile(
            f"""
            import pytest

            {marker}
            @pytest.mark.mock_time()
            async def test_shared():
                raise AssertionError("body ran")
            """
        )
        _assert_setup_error(
            pytester.runpytest(), f"*loop shared at loop_scope={cause}loop_scope='function'*"
        )

    @needs_supported_pytest_asyncio
    def test_async_fixture_on_a_module_loop(self, pytester: pytest.Pytester) -> None:
        """An async fixture on a module-scoped loop conflicts with the test's virtual loop."""
        pytester.makepyfile(
            """
            import pytest, pytest_asyncio

            @pytest_asyncio.fixture(scope="module", loop_scope="module")
            async def resource():
                return 1

            @pytest.mark.mock_time()
            async def test_uses_it(resource):
                raise AssertionError("body ran")
            """
        )
        _assert_setup_error(
            pytester.runpytest(),
            "*async fixture 'resource' runs on a pytest-asyncio loop shared at "
            "loop_scope='module'*",
        )

    @needs_old_pytest_asyncio
    def test_pytest_asyncio_too_old(self, pytester: pytest.Pytester) -> None:
        """An old pytest-asyncio (no loop-factory hook) is an error naming both versions."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.mock_time()
            async def test_hour():
                raise AssertionError("body ran")
            """
        )
        pytester.makepyfile(
            test_ordinary="""
            import asyncio, pytest

            @pytest.mark.asyncio
            async def test_plain():
                await asyncio.sleep(0)
            """
        )
        result = pytester.runpytest()
        result.assert_outcomes(errors=1, passed=1)  # ordinary asyncio tests still run
        result.stdout.fnmatch_lines(
            [
                "*test_hour: mark.mock_time needs pytest-asyncio >= 1.4*"
                f"pytest-asyncio {PYTEST_ASYNCIO} is installed*pip install*"
            ]
        )


class TestCheckedAsTheTestStarts:
    def test_anyio_backend_left_on_real_time(self, pytester: pytest.Pytester) -> None:
        """anyio running a mock_time test on its plain asyncio backend fails, showing the fix."""
        pytester.makeconftest(
            """
            import pytest

            @pytest.fixture
            def anyio_backend():
                return "asyncio"
            """
        )
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.anyio
            @pytest.mark.mock_time()
            async def test_sleep():
                raise AssertionError("body ran")
            """
        )
        _assert_stopped_as_it_starts(
            pytester.runpytest(),
            "*test_sleep: anyio runs it with anyio_backend='asyncio', a *loop on real "
            "time: make the anyio_backend fixture return virtual_anyio_backend*",
        )

    def test_anyio_on_the_virtual_backend(self, pytester: pytest.Pytester) -> None:
        """With virtual_anyio_backend, anyio runs the marked test on the marker's clock."""
        pytester.makeconftest(VIRTUAL_ANYIO_CONFTEST)
        pytester.makepyfile(
            """
            import anyio, pytest
            from harn_async_trace.loop import loop_clock

            @pytest.mark.anyio
            @pytest.mark.mock_time(start_wall_ms=5_000)
            async def test_sleep(mock_clock):
                await anyio.sleep(3600)
                assert loop_clock() is mock_clock
                assert mock_clock.now_wall_ms() == 5_000 + 3_600_000
            """
        )
        pytester.runpytest().assert_outcomes(passed=1)

    @needs_supported_pytest_asyncio
    def test_a_foreign_loop_factory_hook(self, pytester: pytest.Pytester) -> None:
        """A conftest hook that hands pytest-asyncio its own loop is caught before the body."""
        pytester.makeconftest(
            """
            import asyncio, pytest

            @pytest.hookimpl(tryfirst=True)
            def pytest_asyncio_loop_factories(config, item):
                return {"plain": asyncio.new_event_loop}
            """
        )
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.mock_time()
            async def test_hour():
                raise AssertionError("body ran")
            """
        )
        _assert_stopped_as_it_starts(
            pytester.runpytest(),
            "*test_hour: it started on a *loop on real time, not on its mark.mock_time*",
        )


@pytest.mark.parametrize(
    ("marker", "complaint"),
    [
        ("mock_time(5)", "mark.mock_time(5): it takes keyword arguments only: mock_time(*"),
        ("mock_time(start='soon')", "mark.mock_time(start='soon'): unknown keyword argument*"),
        (
            "mock_time(start_wall_ms='soon')",
            "mark.mock_time(start_wall_ms='soon'): start_wall_ms must be an int >= 0*",
        ),
        ("mock_time(start_wall_ms=-1)", "*start_wall_ms must be an int >= 0*"),
        ("mock_time(uvloop='yes')", "mark.mock_time(uvloop='yes'): uvloop must be True or False"),
    ],
)
@pytest.mark.parametrize("asyncio_plugin", [True, False])
def test_marker_misuse_is_one_usage_error_line(
    pytester: pytest.Pytester, marker: str, complaint: str, asyncio_plugin: bool
) -> None:
    """A malformed marker stops the run with one line naming the test, and no traceback."""
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.{marker}
        async def test_bad():
            pass

        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest(*(() if asyncio_plugin else ("-p", "no:asyncio")))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: test_bad.py::test_bad: {complaint}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
