"""pytest plugin: trace fixtures, the ``mock_time`` marker and trace snapshots.

Registered through the ``pytest11`` entry point, so installing the package
is enough. What it adds:

* fixture ``trace_collector``: a fresh, enabled ``SpanCollector`` bound for the test;
* fixture ``mock_clock``: a ``MockClock`` installed for the test;
* marker ``@pytest.mark.mock_time(start_wall_ms=..., uvloop=False)``: an
  ``async def`` test runs on the virtual-time loop (the marker alone is
  enough; it works with pytest-asyncio's ``pytest_asyncio_loop_factories``
  hook, and without pytest-asyncio the plugin runs the test itself);
* fixture ``trace_snapshot`` with ``assert_match(spans=None, *, name=None)``
  comparing a readable trace tree with ``__snapshots__/<module>/<test>.trace``;
  ``pytest --update-trace-snapshots`` writes the goldens.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import re
import sys
import sysconfig
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, SupportsIndex

import pytest

from ._snapshot import render_trace_tree
from .clock import MockClock, install_override
from .collector import SpanCollector
from .context import use_collector
from .model import Span

__all__ = ("DeterminismWarning", "TraceSnapshot")

_MARKER: Final = "mock_time"
_UPDATE_OPTION: Final = "--update-trace-snapshots"
_CLOCK_KEY: Final = pytest.StashKey[MockClock]()
_DEFAULT_START_WALL_MS: Final = 1_700_000_000_000
# The clock of the mock_time test being set up or run. Autouse fixtures are
# set up before pytest-asyncio's runner makes the loop, so the loop factory
# can take it from here and share it with the test's fixtures.
_RUNNING_TEST_CLOCK: list[MockClock] = []


class DeterminismWarning(UserWarning):
    """A mock-time test did something that makes its trace depend on the machine."""


# -- configuration -------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harn-async-trace")
    group.addoption(
        _UPDATE_OPTION,
        action="store_true",
        default=False,
        help="write or rewrite the golden files of trace_snapshot.assert_match",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(start_wall_ms={_DEFAULT_START_WALL_MS}, uvloop=False, patch_wall=False): "
        "run this async test on the harn-async-trace virtual-time loop under a MockClock",
    )


def _marker_options(item: pytest.Item) -> tuple[int, bool, bool] | None:
    """(start_wall_ms, uvloop, patch_wall) of the test's mock_time marker, or None."""
    marker = item.get_closest_marker(_MARKER)
    if marker is None:
        return None
    unknown = set(marker.kwargs) - {"start_wall_ms", "uvloop", "patch_wall"}
    if marker.args or unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: mark.{_MARKER} takes only keyword arguments start_wall_ms=, "
            f"uvloop= and patch_wall=; got args={marker.args!r} kwargs={sorted(unknown)!r}"
        )
    start = marker.kwargs.get("start_wall_ms", _DEFAULT_START_WALL_MS)
    use_uvloop = marker.kwargs.get("uvloop", False)
    patch_wall = marker.kwargs.get("patch_wall", False)
    if (
        isinstance(start, bool)
        or not isinstance(start, int)
        or not isinstance(use_uvloop, bool)
        or not isinstance(patch_wall, bool)
    ):
        raise pytest.UsageError(
            f"{item.nodeid}: mark.{_MARKER} needs start_wall_ms: int, uvloop: bool "
            "and patch_wall: bool"
        )
    return start, use_uvloop, patch_wall


def _item_clock(item: pytest.Item) -> MockClock:
    """The one MockClock of a test: shared by its loop, its fixtures and its collector."""
    clock = item.stash.get(_CLOCK_KEY, None)
    if clock is None:
        options = _marker_options(item)
        start = options[0] if options else _DEFAULT_START_WALL_MS
        clock = item.stash[_CLOCK_KEY] = MockClock(start_wall_ms=start)
    return clock


# -- making the marker alone enough ---------------------------------------------


def _has_mark(obj: object, collector: pytest.Collector, name: str) -> bool:
    marks = getattr(obj, "pytestmark", [])
    return any(m.name == name for m in marks) or collector.get_closest_marker(name) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # pytest-asyncio (strict mode) only converts tests carrying its own
    # marker, and it decides while the item is made; so a coroutine test
    # marked mock_time gets the asyncio marker before that happens.
    if not inspect.iscoroutinefunction(obj) or not collector.config.pluginmanager.has_plugin(
        "asyncio"
    ):
        return
    if _has_mark(obj, collector, _MARKER) and not _has_mark(obj, collector, "asyncio"):
        pytest.mark.asyncio(obj)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # the hook exists only with pytest-asyncio
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """Give mock_time tests the virtual loop; leave every other test as it was."""
    options = _marker_options(item)
    if options is None:
        others = config.hook.pytest_asyncio_loop_factories.get_hookimpls()
        if len(others) > 1:
            return None  # another plugin or conftest decides for ordinary tests
        return {"asyncio": _policy_loop}
    use_uvloop = options[1]

    start_wall_ms = options[0]

    def factory() -> asyncio.AbstractEventLoop:
        from .loop import virtual_loop_factory

        # `item` here is the test's definition node, not the item that runs,
        # so the running test's clock comes from the guard fixture instead.
        clock = _RUNNING_TEST_CLOCK[-1] if _RUNNING_TEST_CLOCK else MockClock(start_wall_ms)
        return virtual_loop_factory(clock, use_uvloop=use_uvloop)()

    return {"virtual-uvloop" if use_uvloop else "virtual-asyncio": factory}


def _policy_loop() -> asyncio.AbstractEventLoop:
    # Same loop pytest-asyncio makes without a factory: honours the policy.
    return asyncio.get_event_loop_policy().new_event_loop()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Without pytest-asyncio, run mock_time coroutine tests on the virtual loop ourselves."""
    if pyfuncitem.config.pluginmanager.has_plugin("asyncio"):
        return None
    options = _marker_options(pyfuncitem)
    if options is None or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    from .loop import run

    arg_names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in arg_names}
    run(pyfuncitem.obj(**kwargs), clock=_item_clock(pyfuncitem), use_uvloop=options[1])
    return True


# -- determinism guard ----------------------------------------------------------


def _is_user_code(filename: str) -> bool:
    """True for files outside the interpreter, site-packages and this package."""
    return not filename.startswith(_LIBRARY_DIRS)


_LIBRARY_DIRS: Final = tuple(
    {
        sysconfig.get_paths()[key]
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    | {str(Path(__file__).resolve().parent), "<"}
)


@pytest.fixture(autouse=True)
def _harn_determinism_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under mock_time: share the test's clock, patch or watch the wall clock, watch sleeps.

    Warns (``DeterminismWarning``, once each per test) when a worker thread
    sleeps for real or, without ``patch_wall=True``, when test or project code
    reads ``time.time()``: both make the trace depend on the machine.
    """
    options = _marker_options(request.node)
    if options is None:
        yield
        return
    clock = _item_clock(request.node)
    _RUNNING_TEST_CLOCK.append(clock)
    real_sleep, real_time = time.sleep, time.time
    warned: set[str] = set()

    def warn_once(topic: str, message: str) -> None:
        if topic not in warned:
            warned.add(topic)
            warnings.warn(DeterminismWarning(message), stacklevel=3)

    def guarded_sleep(seconds: float | SupportsIndex) -> None:
        if threading.current_thread() is not threading.main_thread():
            warn_once(
                "sleep",
                f"time.sleep({seconds!r}) in a worker thread during a mock_time test: "
                "the virtual loop cannot see it, so timings may depend on the machine. "
                "Use asyncio.sleep in the loop, or set an autojump threshold.",
            )
        real_sleep(seconds)

    def guarded_time() -> float:
        if _is_user_code(sys._getframe(1).f_code.co_filename):
            warn_once(
                "time",
                "time.time() read the real wall clock during a mock_time test: its value "
                "depends on the machine. Use @pytest.mark.mock_time(patch_wall=True) so it "
                "follows the mock, or read the MockClock.",
            )
        return real_time()

    undo_wall = None
    if options[2]:
        from ._vtime.session import patch_wall_clock

        undo_wall = patch_wall_clock(clock)
    else:
        time.time = guarded_time  # restored in finally; the guard lasts one test
    time.sleep = guarded_sleep  # restored in finally
    try:
        yield
    finally:
        time.sleep = real_sleep
        if undo_wall is not None:
            undo_wall()
        else:
            time.time = real_time
        _RUNNING_TEST_CLOCK.pop()


# -- fixtures --------------------------------------------------------------------


@pytest.fixture
def mock_clock(request: pytest.FixtureRequest) -> Iterator[MockClock]:
    """A MockClock installed for the test (the marker's clock under ``mock_time``).

    Example:
        def test_wait(mock_clock):
            mock_clock.advance(5)
            assert mock_clock.now_monotonic_ms() == 5000
    """
    clock = _item_clock(request.node)
    with install_override(clock):
        yield clock


@pytest.fixture
def trace_collector(request: pytest.FixtureRequest) -> Iterator[SpanCollector]:
    """A fresh, enabled SpanCollector that the module API uses during the test.

    Example:
        def test_traced(trace_collector):
            with span("step", "x"):
                pass
            assert trace_collector.spans()[0].name == "x"
    """
    timed = request.node.get_closest_marker(_MARKER) is not None or (
        "mock_clock" in request.fixturenames
    )
    if timed:
        # Created under the test's mock so its trace id replays identically.
        with install_override(_item_clock(request.node)):
            collector = SpanCollector()
    else:
        collector = SpanCollector()
    with use_collector(collector):
        yield collector


class TraceSnapshot:
    """Compares a test's trace tree with a golden file (see module docs)."""

    def __init__(self, request: pytest.FixtureRequest, update: bool) -> None:
        self._request = request
        self._update = update

    def path_for(self, name: str | None = None) -> Path:
        """Where the golden file of this test (and optional ``name``) lives."""
        node = self._request.node
        test_file = Path(str(node.path))
        test_name = re.sub(r"[^\w.\-\[\]]+", "_", node.name)
        suffix = "-" + re.sub(r"[^\w.-]+", "_", name) if name else ""
        return test_file.parent / "__snapshots__" / test_file.stem / f"{test_name}{suffix}.trace"

    def assert_match(self, spans: Sequence[Span] | None = None, *, name: str | None = None) -> None:
        """Fail with a unified diff unless the trace matches its golden file.

        Example:
            def test_flow(trace_collector, trace_snapshot):
                run_my_program()
                trace_snapshot.assert_match()
        """
        if spans is None:
            collector = self._collector()
            spans = collector.spans()
        actual = render_trace_tree(spans)
        path = self.path_for(name)
        if self._update:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != actual:
                path.write_text(actual, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(
                f"no trace snapshot at {path}; run pytest {_UPDATE_OPTION} to create it",
                pytrace=False,
            )
        expected = path.read_text(encoding="utf-8")
        if expected != actual:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    actual.splitlines(keepends=True),
                    fromfile=f"{path.name} (golden)",
                    tofile=f"{path.name} (this run)",
                )
            )
            pytest.fail(
                f"trace differs from snapshot {path}\n{diff}\n"
                f"(run pytest {_UPDATE_OPTION} to accept the new trace)",
                pytrace=False,
            )

    def _collector(self) -> SpanCollector:
        if "trace_collector" in self._request.fixturenames:
            collector: SpanCollector = self._request.getfixturevalue("trace_collector")
            return collector
        from .context import current_collector

        return current_collector()


@pytest.fixture
def trace_snapshot(request: pytest.FixtureRequest) -> TraceSnapshot:
    """Golden-file comparison of the test's trace tree.

    Example:
        def test_flow(trace_collector, trace_snapshot):
            ...
            trace_snapshot.assert_match()
    """
    return TraceSnapshot(request, bool(request.config.getoption(_UPDATE_OPTION)))




@pytest.fixture
def virtual_anyio_backend(mock_clock: MockClock) -> tuple[str, dict[str, object]]:
    """anyio's asyncio backend on the virtual-time loop of this test's mock clock.

    Example (conftest.py):
        @pytest.fixture
        def anyio_backend(virtual_anyio_backend):
            return virtual_anyio_backend
    """
    from .loop import virtual_loop_factory

    return ("asyncio", {"loop_factory": virtual_loop_factory(mock_clock)})
