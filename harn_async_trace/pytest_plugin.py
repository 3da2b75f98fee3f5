"""pytest plugin: trace fixtures, the ``mock_time`` marker and trace snapshots.

Registered through the ``pytest11`` entry point, so installing the package
is enough. What it adds:

* fixture ``trace_collector``: a fresh, enabled ``SpanCollector`` bound for the test;
* fixture ``mock_clock``: a ``MockClock`` installed for the test;
* marker ``@pytest.mark.mock_time(start_wall_ms=..., uvloop=False, patch_wall=False)``:
  an ``async def`` test runs on the virtual-time loop (the marker alone is
  enough: with pytest-asyncio >= 1.4 through its ``pytest_asyncio_loop_factories``
  hook, without pytest-asyncio the plugin runs the test itself). A test that
  cannot run there fails with the reason; it never runs on real time;
* fixture ``trace_snapshot`` with ``assert_match(spans=None, *, name=None)``
  comparing a readable trace tree with
  ``__snapshots__/<module>/<Class>.<test>[<params>][-name].trace``;
  ``pytest --snapshot-update`` (or ``--update-trace-snapshots``) writes the
  goldens, and the run ends with what it wrote, updated and left unused.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import pytest

from ._plugin.guard import DeterminismWarning, watch_determinism
from ._plugin.marker import MARKER, USAGE, check_markers, marker_options
from ._plugin.realtime import coroutine_target, on_virtual_loop, setup_problem
from ._plugin.report import GoldenLedger, item_path
from ._snapshot import (
    GOLDEN_SUFFIX,
    Outcome,
    check_golden,
    golden_diff,
    golden_path,
    render_trace_tree,
)
from .clock import MockClock, install_override
from .collector import SpanCollector
from .context import use_collector
from .model import Span

__all__ = ("DeterminismWarning", "TraceSnapshot")

_UPDATE_OPTION: Final = "--update-trace-snapshots"
_SNAPSHOT_UPDATE: Final = "--snapshot-update"  # syrupy's flag, shared when syrupy is there
_CLOCK_KEY: Final = pytest.StashKey[MockClock]()
_COLLECTOR_KEY: Final = pytest.StashKey[SpanCollector]()
_LEDGER_KEY: Final = pytest.StashKey[GoldenLedger]()
_UNDECLARED: Final = object()
# The clock of the mock_time test being set up or run. Autouse fixtures are
# set up before pytest-asyncio's runner makes the loop, so the loop factory
# can take it from here and share it with the test's fixtures.
_RUNNING_TEST_CLOCK: list[MockClock] = []


# -- configuration -------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("harn-async-trace").addoption(
        _UPDATE_OPTION,
        action="store_true",
        default=False,
        help="write or rewrite the trace goldens of trace_snapshot.assert_match "
        f"(same as {_SNAPSHOT_UPDATE}); unused goldens are deleted",
    )


def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    # Every plugin from an entry point has added its options by now, so this is
    # where we learn whether syrupy (or another snapshot plugin) owns the flag;
    # then its value is read through the option string and the flag serves both.
    _, unknown = parser.parse_known_and_unknown_args([_SNAPSHOT_UPDATE])
    if unknown:
        parser.getgroup("harn-async-trace").addoption(
            _SNAPSHOT_UPDATE,
            action="store_true",
            default=False,
            dest="update_snapshots",
            help=f"update trace goldens (same as {_UPDATE_OPTION})",
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{USAGE}: run this async test on the harn-async-trace virtual-time loop",
    )
    update = bool(config.getoption(_UPDATE_OPTION) or config.getoption(_SNAPSHOT_UPDATE, False))
    # syrupy's opt-out of deleting unused snapshots covers trace goldens too.
    cleanup = not config.getoption("--snapshot-no-cleanup", False)
    ledger = config.stash[_LEDGER_KEY] = GoldenLedger(update, delete_unused=update and cleanup)
    config.pluginmanager.register(ledger, "harn-async-trace-goldens")
    ignored = config.getoption("ignore_file_extensions", _UNDECLARED)
    if ignored is not _UNDECLARED:
        # syrupy claims every file under __snapshots__: it would call trace
        # goldens unknown snapshots, fail the run and delete them on update.
        config.option.ignore_file_extensions = [*(ignored or ()), GOLDEN_SUFFIX[1:]]


def _item_clock(item: pytest.Item) -> MockClock:
    """The one MockClock of a test: shared by its loop, its fixtures and its collector.

    The test's collector is made with the clock, before any fixture can move
    it or draw a trace id from it, so ``trace_collector.trace_id`` is the same
    on every run whatever order the fixtures are set up in.
    """
    clock = item.stash.get(_CLOCK_KEY, None)
    if clock is None:
        options = marker_options(item)
        clock = MockClock(start_wall_ms=options.start_wall_ms) if options else MockClock()
        item.stash[_CLOCK_KEY] = clock
        if "trace_collector" in getattr(item, "fixturenames", ()):
            with install_override(clock):
                item.stash[_COLLECTOR_KEY] = SpanCollector()
    return clock


# -- collection: the marker alone is enough --------------------------------------


def _has_mark(obj: object, collector: pytest.Collector, name: str) -> bool:
    marks = getattr(obj, "pytestmark", [])
    return any(m.name == name for m in marks) or collector.get_closest_marker(name) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # pytest-asyncio (strict mode) only converts tests carrying its own
    # marker, and it decides while the item is made; so a coroutine test
    # marked mock_time gets the asyncio marker before that happens. anyio
    # tests are anyio's to run.
    if not inspect.iscoroutinefunction(obj) or not collector.config.pluginmanager.has_plugin(
        "asyncio"
    ):
        return
    if (
        _has_mark(obj, collector, MARKER)
        and not _has_mark(obj, collector, "asyncio")
        and not _has_mark(obj, collector, "anyio")
    ):
        pytest.mark.asyncio(obj)


def pytest_collection_finish(session: pytest.Session) -> None:
    check_markers(session.items)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # the hook exists only with pytest-asyncio
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """Give mock_time tests the virtual loop; leave every other test as it was."""
    options = marker_options(item)
    if options is None:
        others = config.hook.pytest_asyncio_loop_factories.get_hookimpls()
        if len(others) > 1:
            return None  # another plugin or conftest decides for ordinary tests
        return {"asyncio": _policy_loop}
    start_wall_ms, use_uvloop = options.start_wall_ms, options.uvloop

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


# -- running: on the virtual loop, or not at all -----------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if isinstance(item, pytest.Function) and marker_options(item) is not None:
        problem = setup_problem(item)
        if problem is not None:
            pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    target = coroutine_target(item) if isinstance(item, pytest.Function) else None
    if target is None or marker_options(item) is None:
        return (yield)
    assert isinstance(item, pytest.Function)
    owner, attr = target
    test = getattr(owner, attr)
    # Swapped in before pytest-asyncio or anyio wrap the coroutine function,
    # so whichever runs it, the check runs first on the loop it chose.
    setattr(owner, attr, on_virtual_loop(test, item, _item_clock(item)))
    try:
        return (yield)
    finally:
        setattr(owner, attr, test)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Without pytest-asyncio, run mock_time coroutine tests on the virtual loop ourselves."""
    if pyfuncitem.config.pluginmanager.has_plugin("asyncio") or "anyio_backend" in (
        pyfuncitem.fixturenames
    ):
        return None
    options = marker_options(pyfuncitem)
    if options is None or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    from .loop import run

    arg_names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in arg_names}
    run(pyfuncitem.obj(**kwargs), clock=_item_clock(pyfuncitem), use_uvloop=options.uvloop)
    return True


@pytest.fixture(autouse=True)
def _harn_determinism_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under mock_time: share the test's clock with its loop; watch what breaks determinism."""
    options = marker_options(request.node)
    if options is None:
        yield
        return
    clock = _item_clock(request.node)
    _RUNNING_TEST_CLOCK.append(clock)
    try:
        with watch_determinism(clock, options.patch_wall):
            yield
    finally:
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

    Under ``mock_time`` (or with ``mock_clock``) it is made with the test's
    clock, so its trace id is the same on every run.

    Example:
        from harn_async_trace import SpanKind, span

        def test_traced(trace_collector):
            with span(SpanKind.STEP, "x"):
                pass
            assert trace_collector.spans()[0].name == "x"
    """
    node = request.node
    if marker_options(node) is not None or "mock_clock" in request.fixturenames:
        clock = _item_clock(node)
        collector = node.stash.get(_COLLECTOR_KEY, None)
        if collector is None:  # asked for late, through request.getfixturevalue
            with install_override(clock):
                collector = node.stash[_COLLECTOR_KEY] = SpanCollector()
    else:
        collector = SpanCollector()
    with use_collector(collector):
        yield collector


class TraceSnapshot:
    """Compares a test's trace tree with its golden file (see the module docs).

    Example:
        from harn_async_trace import SpanKind, span

        def test_flow(trace_collector, trace_snapshot):
            with span(SpanKind.PIPELINE, "main"):
                pass
            trace_snapshot.assert_match()  # __snapshots__/<module>/test_flow.trace
    """

    def __init__(self, request: pytest.FixtureRequest, ledger: GoldenLedger) -> None:
        self._request = request
        self._ledger = ledger
        self._used: set[Path] = set()

    def path_for(self, name: str | None = None) -> Path:
        """Where the golden file of this test (and optional ``name``) lives.

        ``__snapshots__/<module>/<Class>.<test>[<params>][-name].trace`` beside
        the test file; characters unsafe in file names are percent-encoded.
        """
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"trace_snapshot name must be a non-empty str, got {name!r}")
        node = self._request.node
        return golden_path(Path(node.path), item_path(node), name)

    def assert_match(self, spans: Sequence[Span] | None = None, *, name: str | None = None) -> None:
        """Fail with a unified diff unless the trace matches its golden file.

        With ``--snapshot-update`` the golden is written instead when it differs.

        Example:
            from harn_async_trace import SpanKind, span

            def test_phases(trace_collector, trace_snapshot):
                with span(SpanKind.STEP, "load"):
                    pass
                trace_snapshot.assert_match(name="loaded")  # test_phases-loaded.trace
                with span(SpanKind.STEP, "save"):
                    pass
                trace_snapshot.assert_match()  # test_phases.trace
        """
        path = self.path_for(name)
        if path in self._used:
            pytest.fail(
                f"this test already compared a trace with {path.name}; give each "
                "assert_match of a test its own name=",
                pytrace=False,
            )
        self._used.add(path)
        actual = render_trace_tree(self._collector().spans() if spans is None else spans)
        outcome = check_golden(path, actual, update=self._ledger.update)
        self._ledger.record(path, outcome)
        if outcome is Outcome.MISSING:
            pytest.fail(
                f"no trace snapshot at {_shown(path)}; run pytest {_SNAPSHOT_UPDATE} to create it",
                pytrace=False,
            )
        if outcome is Outcome.DIFFERS:
            pytest.fail(
                f"trace differs from snapshot {_shown(path)}\n{golden_diff(path, actual)}\n"
                f"(run pytest {_SNAPSHOT_UPDATE} to accept the new trace)",
                pytrace=False,
            )

    def _collector(self) -> SpanCollector:
        if "trace_collector" in self._request.fixturenames:
            collector: SpanCollector = self._request.getfixturevalue("trace_collector")
            return collector
        from .context import current_collector

        return current_collector()


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


@pytest.fixture
def trace_snapshot(request: pytest.FixtureRequest) -> TraceSnapshot:
    """Golden-file comparison of the test's trace tree (a :class:`TraceSnapshot`).

    Example:
        import asyncio
        import pytest
        from harn_async_trace import SpanKind, span

        @pytest.mark.mock_time()
        async def test_wait(trace_collector, trace_snapshot):
            async with span(SpanKind.STEP, "wait"):
                await asyncio.sleep(30)
            trace_snapshot.assert_match()  # "#1 step wait @0ms +30000ms"
    """
    return TraceSnapshot(request, request.config.stash[_LEDGER_KEY])


@pytest.fixture
def virtual_anyio_backend(mock_clock: MockClock) -> tuple[str, dict[str, object]]:
    """anyio's asyncio backend on the virtual-time loop of this test's mock clock.

    Example (the fixture override usually goes in conftest.py):
        import anyio
        import pytest

        @pytest.fixture
        def anyio_backend(virtual_anyio_backend):
            return virtual_anyio_backend

        @pytest.mark.anyio
        async def test_sleep(mock_clock):
            await anyio.sleep(60)
            assert mock_clock.now_monotonic_ms() == 60_000
    """
    from .loop import virtual_loop_factory

    return ("asyncio", {"loop_factory": virtual_loop_factory(mock_clock)})
