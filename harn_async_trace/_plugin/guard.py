"""Determinism warnings for ``mock_time`` tests: real sleeps in threads, wall-clock reads."""

from __future__ import annotations

import sys
import sysconfig
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, SupportsIndex

from ..clock import MockClock

__all__ = ("DeterminismWarning", "watch_determinism")


class DeterminismWarning(UserWarning):
    """A mock-time test did something that makes its trace depend on the machine.

    Example (turn the warnings into errors for a whole suite, in pytest.ini):
        [pytest]
        filterwarnings = error::harn_async_trace.pytest_plugin.DeterminismWarning
    """

    __module__ = "harn_async_trace.pytest_plugin"  # where users import and filter it


_LIBRARY_DIRS: Final = tuple(
    {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {str(Path(__file__).resolve().parents[1]), "<"}
)


def _is_user_code(filename: str) -> bool:
    """True for files outside the interpreter, site-packages and this package."""
    return not filename.startswith(_LIBRARY_DIRS)


@contextmanager
def watch_determinism(clock: MockClock, patch_wall: bool) -> Iterator[None]:
    """Patch (``patch_wall``) or watch the wall clock, and watch real sleeps, for one test.

    Warns (``DeterminismWarning``, once each per test) when a worker thread
    sleeps for real or, without ``patch_wall``, when test or project code reads
    ``time.time()``: both make the trace depend on the machine.
    """
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
    if patch_wall:
        from .._vtime.session import patch_wall_clock

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
