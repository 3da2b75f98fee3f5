"""``@pytest.mark.mock_time(start_wall_ms=..., uvloop=False, patch_wall=False)``: its options.

A malformed marker is reported once per test as a one-line usage error at the
end of collection (see ``check_markers``), so the hooks that run during
collection (pytest-asyncio's loop-factory hook among them) never raise about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import pytest

__all__ = ("MARKER", "USAGE", "MockTimeOptions", "check_markers", "marker_options")

MARKER: Final = "mock_time"
_DEFAULT_START_WALL_MS: Final = 1_700_000_000_000
USAGE: Final = (
    f"{MARKER}(start_wall_ms: int = {_DEFAULT_START_WALL_MS}, uvloop: bool = False, "
    "patch_wall: bool = False)"
)
_OPTIONS_KEY: Final = pytest.StashKey["MockTimeOptions | str"]()


@dataclass(frozen=True, slots=True)
class MockTimeOptions:
    """What a well-formed ``mock_time`` marker asks for."""

    start_wall_ms: int = _DEFAULT_START_WALL_MS
    uvloop: bool = False
    patch_wall: bool = False


def _parse(mark: pytest.Mark) -> MockTimeOptions | str:
    """The marker's options, or what is wrong with it (one sentence)."""
    if mark.args:
        shown = ", ".join(repr(a) for a in mark.args)
        return f"mark.{MARKER}({shown}): it takes keyword arguments only: {USAGE}"
    unknown = sorted(set(mark.kwargs) - {"start_wall_ms", "uvloop", "patch_wall"})
    if unknown:
        shown = ", ".join(f"{k}={mark.kwargs[k]!r}" for k in unknown)
        return f"mark.{MARKER}({shown}): unknown keyword argument; it takes {USAGE}"
    start = mark.kwargs.get("start_wall_ms", _DEFAULT_START_WALL_MS)
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        return (
            f"mark.{MARKER}(start_wall_ms={start!r}): start_wall_ms must be an int >= 0 "
            "(ms since the epoch)"
        )
    flags = {}
    for key in ("uvloop", "patch_wall"):
        value = mark.kwargs.get(key, False)
        if not isinstance(value, bool):
            return f"mark.{MARKER}({key}={value!r}): {key} must be True or False"
        flags[key] = value
    return MockTimeOptions(start, flags["uvloop"], flags["patch_wall"])


def _options_or_problem(item: pytest.Item) -> MockTimeOptions | str | None:
    mark = item.get_closest_marker(MARKER)
    if mark is None:
        return None
    cached = item.stash.get(_OPTIONS_KEY, None)
    if cached is None:
        cached = item.stash[_OPTIONS_KEY] = _parse(mark)
    return cached


def marker_options(item: pytest.Item) -> MockTimeOptions | None:
    """The test's ``mock_time`` options; None without the marker.

    A malformed marker reads as the defaults here: ``check_markers`` has
    already stopped the session before such a test could run.
    """
    options = _options_or_problem(item)
    if options is None:
        return None
    return options if isinstance(options, MockTimeOptions) else MockTimeOptions()


def check_markers(items: Iterable[pytest.Item]) -> None:
    """Raise one ``pytest.UsageError`` with a line per test whose marker is malformed."""
    problems = [
        f"{item.nodeid}: {options}"
        for item in items
        if isinstance(options := _options_or_problem(item), str)
    ]
    if problems:
        raise pytest.UsageError(*problems)
