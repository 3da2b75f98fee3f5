"""docs/deterministic-tests.md does what it says: its example workflow and every Python block."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

import pytest
from plugin_support import write_ini

from harn_async_trace import pytest_plugin

DOC = Path(__file__).resolve().parents[1] / "docs" / "deterministic-tests.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(DOC.read_text()) if lang == language]


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    write_ini(pytester)


def test_opening_example_run_break_update(pytester: pytest.Pytester) -> None:
    """The first module fails without a golden, writes it, breaks as shown, and updates."""
    module, golden, diff = _blocks("python")[0], _blocks("text")[0], _blocks("diff")[0]
    pytester.makepyfile(test_agent=module)
    result = pytester.runpytest("test_agent.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(_blocks("")[0].splitlines())

    result = pytester.runpytest("test_agent.py", "--snapshot-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*= trace snapshots =*", "1 written"])
    written = Path(pytester.path, "__snapshots__", "test_agent", "test_agent.trace")
    assert written.read_text() == golden

    broken = module.replace("asyncio.sleep(0.12)", "asyncio.sleep(0.2)")
    assert broken != module
    pytester.makepyfile(test_agent=broken)
    result = pytester.runpytest("test_agent.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(diff.splitlines())

    result = pytester.runpytest("test_agent.py", "--snapshot-update")
    result.stdout.fnmatch_lines(["1 updated"])
    pytester.runpytest("test_agent.py").assert_outcomes(passed=1)


def test_marker_error_as_shown(pytester: pytest.Pytester) -> None:
    """The page's example of a malformed marker is what pytest prints for one."""
    pytester.makepyfile(
        test_agent="""
        import pytest

        @pytest.mark.mock_time(5)
        async def test_bad():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(_blocks("")[1].splitlines())


@pytest.mark.parametrize("index", range(1, len(_blocks("python"))))
def test_every_other_python_block_passes(pytester: pytest.Pytester, index: int) -> None:
    """Each later block is a whole test module that passes (goldens written on a first run)."""
    pytester.makepyfile(test_block=_blocks("python")[index])
    first = pytester.runpytest("--snapshot-update")
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    second = pytester.runpytest()
    assert second.ret == pytest.ExitCode.OK, second.stdout.str()
    assert second.parseoutcomes()["passed"] >= 1


DOCUMENTED = (
    pytest_plugin.mock_clock,
    pytest_plugin.trace_collector,
    pytest_plugin.trace_snapshot,
    pytest_plugin.TraceSnapshot,
    pytest_plugin.TraceSnapshot.assert_match,
    pytest_plugin.virtual_anyio_backend,
)


@pytest.mark.parametrize("documented", DOCUMENTED, ids=lambda d: d.__qualname__)
def test_docstring_example_is_a_passing_test_module(
    pytester: pytest.Pytester, documented: object
) -> None:
    """The Example of each fixture's docstring passes as a test module of its own."""
    doc = inspect.getdoc(documented) or ""
    example = textwrap.dedent(doc.split("Example", 1)[1].split(":\n", 1)[1])
    pytester.makepyfile(test_example=example)
    assert pytester.runpytest("--snapshot-update").ret == pytest.ExitCode.OK
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
