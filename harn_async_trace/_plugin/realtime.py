"""A ``mock_time`` test runs on its virtual loop or fails saying why, never on real time.

Two checks. Before setup, :func:`setup_problem` names the causes that the
configuration alone reveals: a plain ``def`` test, a pytest-asyncio without
the loop-factory hook (older than 1.4), a loop shared wider than the test, an
async fixture on such a loop. Then, as the test's coroutine starts,
:func:`on_virtual_loop` checks that the running loop really is this test's
virtual loop, so whatever else chose the loop (another plugin's hook, an
anyio backend left on real time) fails the test before its body runs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import pytest

from ..clock import MockClock, active_mock_clock
from ..loop import loop_clock
from .marker import MARKER

__all__ = ("MIN_PYTEST_ASYNCIO", "coroutine_target", "on_virtual_loop", "setup_problem")

# The first release with the pytest_asyncio_loop_factories hook, which is how
# the plugin hands pytest-asyncio the virtual loop. Keep in step with the
# pytest-asyncio range in pyproject.toml.
MIN_PYTEST_ASYNCIO: Final = "1.4"
_ANYIO_FIX: Final = (
    "make the anyio_backend fixture return virtual_anyio_backend (in conftest.py: "
    "`@pytest.fixture` `def anyio_backend(virtual_anyio_backend): return virtual_anyio_backend`)"
)


def coroutine_target(item: pytest.Function) -> tuple[object, str] | None:
    """Where the test's coroutine function lives (object, attribute); None for a sync test.

    Hypothesis wraps an async test in a sync function and keeps the
    coroutine function as ``inner_test``, as pytest-asyncio also knows.
    """
    obj = item.obj
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", None)
    if inner is not None and inspect.iscoroutinefunction(inner):
        return obj.hypothesis, "inner_test"
    return (item, "obj") if inspect.iscoroutinefunction(obj) else None


def _runs_under_anyio(item: pytest.Function) -> bool:
    return "anyio_backend" in item.fixturenames


def setup_problem(item: pytest.Function) -> str | None:
    """Why this ``mock_time`` test cannot run on the virtual loop, if the configuration shows it."""
    if coroutine_target(item) is None:
        return (
            f"mark.{MARKER} runs `async def` tests on the virtual-time loop, and this test is "
            "a plain function; in a sync test use the mock_clock fixture and move time with "
            "mock_clock.advance(seconds)"
        )
    config = item.config
    if _runs_under_anyio(item) or not config.pluginmanager.has_plugin("asyncio"):
        return None  # anyio runs it (checked as it starts) or this plugin does
    if getattr(config.hook.pytest_asyncio_loop_factories, "spec", None) is None:
        return (
            f"mark.{MARKER} needs pytest-asyncio >= {MIN_PYTEST_ASYNCIO} (its "
            "pytest_asyncio_loop_factories hook) to put the test on the virtual loop, and "
            f"pytest-asyncio {_installed('pytest-asyncio')} is installed: "
            f"pip install 'pytest-asyncio>={MIN_PYTEST_ASYNCIO}'"
        )
    scope = _test_loop_scope(item)
    if scope != "function":
        return (
            f"pytest-asyncio would run it on a loop shared at loop_scope={scope!r} (from "
            "mark.asyncio or the asyncio_default_test_loop_scope option); a "
            f"mark.{MARKER} test needs a loop of its own: loop_scope='function'"
        )
    for name, fixture_scope in _async_fixture_loop_scopes(item):
        if fixture_scope != "function":
            return (
                f"its async fixture {name!r} runs on a pytest-asyncio loop shared at "
                f"loop_scope={fixture_scope!r}, on real time and apart from the test's "
                "virtual loop; give the fixture loop_scope='function' or drop "
                f"mark.{MARKER}"
            )
    return None


def _installed(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "(version unknown)"


def _test_loop_scope(item: pytest.Function) -> str:
    marker = item.get_closest_marker("asyncio")
    scope = None if marker is None else marker.kwargs.get("loop_scope", marker.kwargs.get("scope"))
    return str(scope or item.config.getini("asyncio_default_test_loop_scope") or "function")


def _async_fixture_loop_scopes(item: pytest.Function) -> Iterator[tuple[str, str]]:
    """(name, loop scope) of each pytest-asyncio fixture the test uses, as it sees them."""
    config = item.config
    auto = (config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")) == "auto"
    default = config.getini("asyncio_default_fixture_loop_scope")
    for name, defs in item._fixtureinfo.name2fixturedefs.items():
        if not defs or name not in item.fixturenames:
            continue
        fixturedef = defs[-1]
        func = getattr(fixturedef.func, "__func__", fixturedef.func)
        is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        if getattr(func, "_force_asyncio_fixture", False) or (auto and is_async):
            scope = getattr(func, "_loop_scope", None)
            if scope is None and default and default != "fixture-scope":
                scope = default
            yield name, str(scope or fixturedef.scope)


def on_virtual_loop(
    test: Callable[..., Coroutine[Any, Any, Any]], item: pytest.Function, clock: MockClock
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``test`` made to fail at once unless it runs on the virtual loop of ``clock``."""

    @functools.wraps(test)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        problem = _loop_problem(item, clock)
        if problem is not None:
            pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)
        return await test(*args, **kwargs)

    return checked


def _loop_problem(item: pytest.Function, clock: MockClock) -> str | None:
    loop = asyncio._get_running_loop()
    if loop is not None:
        running = loop_clock(loop)
        if running is clock:
            return None
        where = f"a {type(loop).__qualname__} loop " + (
            "on another clock" if running is not None else "on real time"
        )
    else:
        # anyio's trio backend: trio's own MockClock drives time, and a clock
        # that follows it (and started from this test's clock) is the active mock.
        active = active_mock_clock()
        if active is clock or getattr(active, "_origin", None) is clock:
            return None
        where = "a loop that is not this test's virtual loop"
    if _runs_under_anyio(item):
        backend = item.funcargs.get("anyio_backend")
        return f"anyio runs it with anyio_backend={backend!r}, {where}: {_ANYIO_FIX}"
    return (
        f"it started on {where}, not on its mark.{MARKER} virtual loop: another plugin or "
        "conftest chose the loop (its own pytest_asyncio_loop_factories hook, "
        "mark.asyncio(loop_factories=...), ...)"
    )
